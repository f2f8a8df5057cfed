"""What changed between two drawn models (two runs' snapshots, `Document.graph_dict()`): layers added, removed,
rewired, and arguments changed. Layers are matched by name, as Keras names them, since node ids are the editor's."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    kind: str   # 'added', 'removed', 'rewired', 'changed'
    layer: str  # the layer's name (in the newer model for 'added', the older for 'removed')
    detail: str

    def __str__(self) -> str:
        return f"{self.layer}: {self.detail}"


def _layers(graph: dict) -> dict[str, dict]:
    return {n["config"].get("name", n["id"]): n for n in graph.get("nodes", [])}


def _inputs(graph: dict) -> dict[str, list[tuple]]:
    """Each layer's inputs as (port, source layer, source output), by layer name."""
    names = {n["id"]: n["config"].get("name", n["id"]) for n in graph.get("nodes", [])}
    out: dict[str, list[tuple]] = {}
    for w in graph.get("wires", []):
        out.setdefault(names.get(w["dst"], w["dst"]), []).append((w["dst_port"], names.get(w["src"], w["src"]),
                                                                   w["src_port"]))
    return {k: sorted(v) for k, v in out.items()}


def _describe_inputs(inputs: list[tuple]) -> str:
    return ", ".join(f"{src}[{port}]" if port else src for _, src, port in inputs) or "nothing"


def diff_models(old: dict, new: dict) -> list[Change]:
    """The changes that turn model `old` into model `new`, in the newer model's layer order."""
    before, after = _layers(old), _layers(new)
    wires_before, wires_after = _inputs(old), _inputs(new)
    changes = [Change("removed", name, f"removed ({node['class_name']})")
               for name, node in before.items() if name not in after]
    for name, node in after.items():
        if name not in before:
            changes.append(Change("added", name, f"added ({node['class_name']})"))
            continue
        was = before[name]
        if was["class_name"] != node["class_name"]:
            changes.append(Change("changed", name, f"class {was['class_name']} → {node['class_name']}"))
        else:
            keys = sorted((set(was["config"]) | set(node["config"])) - {"name"})
            moved = [k for k in keys if was["config"].get(k) != node["config"].get(k)]
            if moved:
                changes.append(Change("changed", name, "; ".join(
                    f"{k} {was['config'].get(k)!r} → {node['config'].get(k)!r}" for k in moved)))
        if wires_before.get(name, []) != wires_after.get(name, []):
            changes.append(Change("rewired", name, f"inputs {_describe_inputs(wires_before.get(name, []))} → "
                                                   f"{_describe_inputs(wires_after.get(name, []))}"))
    return changes
