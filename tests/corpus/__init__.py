"""The test corpus of odd and bad GACC downloads (see build_corpus.py)."""
