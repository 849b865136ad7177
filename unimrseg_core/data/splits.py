"""Seeds of the procedural splits; training may never use the test seed (config validation checks)."""

from typing import Final

TRAIN_SEED: Final[int] = 1
TEST_SEED: Final[int] = 1_000_003
TEST_SCENES: Final[int] = 140  # default held-out split size (20 per lighting x fault mix, see eval)
