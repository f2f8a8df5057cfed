"""Training in ONNX Runtime without gradient kernels: the whole step is one ONNX graph of standard ops.

- `trainer`: compile / fit / evaluate (mixed into `Model`), host-side loss and metric accumulation, callbacks.
- `targets`, `data`: the data fit and evaluate accept, checked before the first step.
- `step_graph`: forward + losses + penalties + metric statistics + gradient + optimizer update as one graph.
- `autodiff`: reverse mode over a `GraphBuilder`'s recorded nodes; `gradients`: one rule per ONNX op type;
  `scan_grad`: the Scan rule (recurrent layers); `conv_gradients`: Conv, ConvTranspose and the pooling ops.
- `blocked_conv`: on the CPU, the step's 2-D convolutions in ONNX Runtime's own blocked layout (its
  `com.microsoft.nchwc` ops, the one departure from standard ops, checked once per process and skipped where unusable).
- `session`: the ORT session with weights and optimizer state in two ping-pong sets of OrtValues.

An op without a rule makes training fail with a clear `GradientError`; a layer that emits a new op type registers
its rule with `core.training.gradients.register_gradient(op_type)` (fn(g, node, xs, ys, dys) -> one gradient or None
per input, written with `core.ops` into `g`).
"""
