"""Max pooling before a ReLU in training steps: Conv2D(activation="relu") -> MaxPooling2D, the pattern of most
convnets, is recorded as Relu -> MaxPool, which training runs as MaxPool -> Relu.

ReLU is nondecreasing, so max(relu(x) over a window) = relu(max(x over the window)) exactly, and the step computes
the same forward values with the ReLU and its gradient on the pooled tensor, a quarter the size for 2 x 2 pools.
The gradient is the same too: where the window's maximum is positive, the positions where relu(x) reaches it are
those where x does, so the first of them (MaxPool's gradient rule, as TensorFlow's) is the same position, and the
ReLU's derivative there is 1 in both orders; where it is not positive, both orders give the window nothing (the
ReLU's derivative is 0 at every position of the window, or at the pooled value). For the keras-io MNIST convnet
the ReLU's gradient on (128, 32, 26, 26), 1.7 ms a step, shrinks to (128, 32, 13, 13).
"""

from __future__ import annotations

from core.graph import GraphBuilder, node_readers


def pool_before_relu(g: GraphBuilder) -> int:
    """Swap every Relu whose only reader is a MaxPool (directly or through one Transpose, the layout change
    around ONNX's pooling) with that MaxPool, in the recorded forward graph; returns how many. Nodes that a custom
    gradient covers, pools that also return indices, and ReLUs whose output something else reads stay as they
    are."""
    covered = g.custom_gradient_node_ids()
    readers = node_readers(g.nodes)
    producer = {name: node for node in g.nodes for name in node.outputs}
    swapped = 0
    for pool in list(g.nodes):
        if pool.op_type != "MaxPool" or pool.domain or len(pool.outputs) != 1:
            continue
        chain = [pool]
        source = producer.get(pool.inputs[0])
        if source is not None and source.op_type == "Transpose" and not source.domain:
            chain.insert(0, source)
            source = producer.get(source.inputs[0])
        if source is None or source.op_type != "Relu" or source.domain:
            continue
        if any(id(n) in covered for n in [source] + chain):
            continue
        if any(readers.get(n.inputs[0], []) != [n] for n in chain):  # the ReLU's (and Transpose's) only reader
            continue
        relu = source
        pooled = g.values[pool.outputs[0]]
        # The chain now reads the ReLU's input; the ReLU reads the pooled values and writes the pool's output.
        chain[0].inputs[0] = relu.inputs[0]
        before_relu = g._new_tensor(g.unique_name(pool.outputs[0] + "_before_relu"), pooled.dtype, pooled.shape)
        pool.outputs = [before_relu.name]
        relu.inputs, relu.outputs = [before_relu.name], [pooled.name]
        g.nodes.remove(relu)
        g.nodes.insert(g.nodes.index(pool) + 1, relu)
        swapped += 1
    return swapped
