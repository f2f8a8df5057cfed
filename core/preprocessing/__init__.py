"""`keras.preprocessing`: sequences (`sequence`), texts (`text`), images (`image`), and tf.keras 2's dataset makers
(`timeseries_dataset_from_array`, `text_dataset_from_directory`, which Keras 3 keeps in `keras.utils`)."""

from core.preprocessing import image, sequence, text  # noqa: F401
from core.preprocessing.sequence import pad_sequences  # noqa: F401
from core.preprocessing.text import Tokenizer  # noqa: F401
from core.utils import text_dataset_from_directory, timeseries_dataset_from_array  # noqa: F401
