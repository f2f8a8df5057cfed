"""`core.ops`: the functions layers compute with, as Keras 3 layers compute with `keras.ops`.

Called on symbolic tensors they record ONNX nodes; called on concrete values they run at once (see `dispatch`).
"""

from core.ops.dispatch import EagerTensor, broadcast_shapes, is_symbolic  # noqa: F401
from core.ops.math import *  # noqa: F401,F403
from core.ops.math import abs, all, any, max, min, round, sum  # noqa: F401  (names shadowing builtins)
from core.ops.array import *  # noqa: F401,F403
from core.ops.nn import *  # noqa: F401,F403
from core.ops.conv import *  # noqa: F401,F403
from core.ops.rnn import *  # noqa: F401,F403

# -- attention (issue 15) --------------------------------------------------------------------------------------------
from core.ops.einsum import *  # noqa: F401,F403,E402

# -- preprocessing (issue 15) -----------------------------------------------------------------------------------------
from core.ops.hashing import *  # noqa: F401,F403,E402
from core.ops.strings import *  # noqa: F401,F403,E402
