package openaisim

// polarity returns +1 for a positive English word, -1 for a negative one
// and 0 otherwise. w must be lowercase.
func polarity(w string) int {
	switch w {
	case "good", "great", "excellent", "amazing", "awesome",
		"fantastic", "wonderful", "love", "loved", "loving",
		"like", "liked", "happy", "glad", "best",
		"better", "nice", "perfect", "brilliant", "enjoy",
		"enjoyed", "beautiful", "delightful", "pleased", "superb",
		"impressive", "recommend", "thanks", "thank", "fun",
		"easy", "fast", "helpful", "reliable", "smooth",
		"win", "wins", "success", "cool", "favorite",
		"exciting", "satisfied":
		return 1
	case "bad", "terrible", "awful", "horrible", "worst",
		"worse", "hate", "hated", "poor", "sad",
		"angry", "annoying", "annoyed", "broken", "bug",
		"buggy", "crash", "crashes", "slow", "fail",
		"failed", "fails", "failure", "disappointing", "disappointed",
		"useless", "boring", "ugly", "problem", "problems",
		"issue", "expensive", "scam", "waste", "wrong",
		"refund", "upset", "sucks", "lose", "lost",
		"unhappy", "frustrating":
		return -1
	}
	return 0
}

// isNegator reports whether w flips the sentiment of the words after it.
func isNegator(w string) bool {
	switch w {
	case "not", "no", "never", "nobody", "nothing", "neither", "nor", "without":
		return true
	}
	return false
}
