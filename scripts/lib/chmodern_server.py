"""Serves ClickHouse 26.9 (PyPI chdb-core) over the native and HTTP protocols.

Usage: python chmodern_server.py CONFIG_DIR DATA_DIR

chdb embeds the whole of clickhouse-local, listeners included. The process
changes into CONFIG_DIR (which holds config.xml: ports, listen host, memory
limit), opens a session on DATA_DIR, starts the TCP and HTTP listeners and
then runs one query that never returns, so the listeners keep serving until
the process is signalled. Data survives a restart.
"""

import os
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    config_dir, data_dir = sys.argv[1], sys.argv[2]
    # Inherited descriptors (a caller's lock file, say) would stay open for
    # the server's lifetime: close them.
    os.closerange(3, 1024)
    os.chdir(config_dir)
    # No Python signal handler: the main thread stays inside the query, so
    # SIGTERM takes its default action and ends the process. Every INSERT
    # has been written to its part by the time it returned.
    from chdb import _chdb  # noqa: PLC0415 # After chdir: it reads ./config.xml.

    keep_alive = (
        "SELECT sleepEachRow(1) FROM numbers(1000000000000) "
        "SETTINGS function_sleep_max_microseconds_per_block = 0, max_block_size = 1 "
        "FORMAT Null"
    )
    _chdb.query(
        "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; " + keep_alive,
        "CSV",
        path=data_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
