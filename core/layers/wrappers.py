"""Layer wrappers: Bidirectional, TimeDistributed."""
