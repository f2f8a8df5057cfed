"""`keras.preprocessing`: padding sequences and turning texts into integer sequences (`sequence`, `text`)."""

from core.preprocessing import sequence, text  # noqa: F401
from core.preprocessing.sequence import pad_sequences  # noqa: F401
from core.preprocessing.text import Tokenizer  # noqa: F401
