#!/usr/bin/env python3
"""Writes BPE tokenizers that use the model options gen_bpe.py leaves off.

Both are trained on gen_bpe.py's corpus with a small alphabet, so that many
characters are unknown, and use a BertNormalizer (without lowercasing), a
BertPreTokenizer and a TemplateProcessing that gives the sequence type id 1:

  options_a.json: continuing_subword_prefix "##", end_of_word_suffix "</w>",
                  unk_token "<unk>" with fuse_unk.
  options_b.json: the same vocabulary plus byte tokens <0x23> ("#"),
                  <0x80>..<0xBF> and <0xE0>..<0xEF> with byte_fallback,
                  ignore_merges, no fuse_unk. Two-byte characters stay
                  unknown, three-byte ones fall back to bytes.

Usage: .local/venv/bin/python gpu/tokenizer/testdata/gen_bpe_options.py OUT_DIR
"""

import json
import os
import sys

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

sys.dont_write_bytecode = True  # Leave no __pycache__ in the source tree.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_bpe  # noqa: E402


def main():
    out_dir = sys.argv[1]
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=800,
        special_tokens=["<unk>", "<s>", "</s>"],
        continuing_subword_prefix="##",
        end_of_word_suffix="</w>",
        limit_alphabet=70,
        show_progress=False,
    )
    tok.train_from_iterator(gen_bpe.corpus(lines=5000), trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:1 </s>:1", special_tokens=[("<s>", 1), ("</s>", 2)])
    a = json.loads(tok.to_str())
    a["model"]["unk_token"] = "<unk>"
    a["model"]["fuse_unk"] = True

    b = json.loads(json.dumps(a))
    vocab = b["model"]["vocab"]
    for byte in [0x23] + list(range(0x80, 0xC0)) + list(range(0xE0, 0xF0)):
        vocab["<0x%02X>" % byte] = len(vocab)
    b["model"]["byte_fallback"] = True
    b["model"]["fuse_unk"] = False
    b["model"]["ignore_merges"] = True

    for name, data in (("options_a.json", a), ("options_b.json", b)):
        text = json.dumps(data, ensure_ascii=False)
        Tokenizer.from_str(text)
        with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
