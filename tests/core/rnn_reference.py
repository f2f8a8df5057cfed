"""NumPy references for Keras 3's recurrent layers, masks included (a transcription of `keras.backend.rnn`'s rules:
a masked step keeps the previous states and outputs the previous output, zeros before the first unmasked step)."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_step(x, states, kernel, rec, bias, act=np.tanh, rec_act=sigmoid):
    h, c = states
    z = x @ kernel + h @ rec + (0 if bias is None else bias)
    H = h.shape[-1]
    i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
    c = rec_act(f) * c + rec_act(i) * act(g)
    h = rec_act(o) * act(c)
    return h, [h, c]


def gru_step(x, states, kernel, rec, bias, act=np.tanh, rec_act=sigmoid, reset_after=True):
    h = states[0]
    H = h.shape[-1]
    if bias is None:
        in_b, rec_b = 0, 0
    elif reset_after:
        in_b, rec_b = bias[0], bias[1]
    else:
        in_b, rec_b = bias, 0
    xz = x @ kernel + in_b
    if reset_after:
        inner = h @ rec + rec_b
        z = rec_act(xz[:, :H] + inner[:, :H])
        r = rec_act(xz[:, H:2 * H] + inner[:, H:2 * H])
        hh = act(xz[:, 2 * H:] + r * inner[:, 2 * H:])
    else:
        inner = h @ rec[:, :2 * H]
        z = rec_act(xz[:, :H] + inner[:, :H])
        r = rec_act(xz[:, H:2 * H] + inner[:, H:2 * H])
        hh = act(xz[:, 2 * H:] + (r * h) @ rec[:, 2 * H:])
    h = z * h + (1 - z) * hh
    return h, [h]


def simple_step(x, states, kernel, rec, bias, act=np.tanh):
    h = act(x @ kernel + states[0] @ rec + (0 if bias is None else bias))
    return h, [h]


def run_rnn(step, x, states, mask=None, go_backwards=False, return_sequences=False, return_state=False,
            zero_output_for_mask=False):
    T = x.shape[1]
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    prev = np.zeros_like(states[0])
    outs = []
    for t in order:
        out, new = step(x[:, t], states)
        if mask is not None:
            m = mask[:, t][:, None]
            new = [np.where(m, n, s) for n, s in zip(new, states)]
            out = np.where(m, out, 0.0 if zero_output_for_mask else prev)
        states, prev = new, out
        outs.append(out)
    result = np.stack(outs, 1) if return_sequences else prev
    return [result] + list(states) if return_state else result
