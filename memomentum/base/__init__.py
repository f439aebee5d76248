"""The small rules every layer shares: the errors, atomic writes, the seed check, "a, b and N more",
the core count. Imports nothing else of memomentum."""
