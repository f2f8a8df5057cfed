"""Training in ONNX Runtime without gradient kernels: the whole step is one ONNX graph of standard ops.

- `trainer`: compile / fit / evaluate (mixed into `Model`), host-side loss and metric accumulation, callbacks.
- `targets`, `data`: the data fit and evaluate accept, checked before the first step.
- `step_graph`: forward + losses + penalties + metric statistics + gradient + optimizer update as one graph.
- `autodiff`: reverse mode over a `GraphBuilder`'s recorded nodes; `gradients`: one rule per ONNX op type;
  `scan_grad`: the Scan rule (recurrent layers); `conv_gradients`: Conv, ConvTranspose and average pooling;
  `pool_gradients`: max pooling.
- `pool_first`: ReLU -> MaxPool recorded, MaxPool -> ReLU trained (the same numbers, a quarter of the ReLU's work).
- `channels_first`: the step, forward and gradient, keeps convolution stacks channels first (ONNX's layout),
  without the Transposes Keras's channels-last layers write around each convolution.
- `scalar_broadcast`: () scalars against (..., 1) tensors shaped (1, ..., 1), ONNX Runtime's fast broadcasting path.
- `host_dropout`: on the CPU, Dropout masks from bits the host draws each step (ONNX Runtime's draw is one thread).
- `blocked_conv`: on the CPU, the step's 2-D convolutions in ONNX Runtime's own blocked layout (its
  `com.microsoft.nchwc` ops, the one departure from standard ops, checked once per process and skipped where unusable).
- `session`: the ORT session with weights and optimizer state in two ping-pong sets of OrtValues, and the choice of
  how many threads run a CPU step, and whether they spin (`ThreadChoice`).

An op without a rule makes training fail with a clear `GradientError`; a layer that emits a new op type registers
its rule with `core.training.gradients.register_gradient(op_type)` (fn(g, node, xs, ys, dys) -> one gradient or None
per input, written with `core.ops` into `g`).
"""
