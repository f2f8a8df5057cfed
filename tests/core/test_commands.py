"""Undoable commands and the command stack, without Qt."""

import pytest

from core import commands, layer_schema
from core.document import Document, LayerNode, Wire
from core.errors import ConfigError, GraphError


def node(doc, class_name, **config):
    cfg = layer_schema.default_config(class_name, config.pop("name", None) or doc.unique_name(class_name))
    cfg.update(config)
    return LayerNode(doc.new_node_id(), class_name, cfg, (0.0, 0.0))


def snapshot(doc):
    return doc.graph_dict()


def built(stack):
    doc = stack.doc
    i = node(doc, "InputLayer", shape=[4])
    stack.push(commands.AddNode(i))
    d = node(doc, "Dense", units=3)
    stack.push(commands.AddNode(d))
    stack.push(commands.AddWire(Wire(i.id, 0, d.id, 0)))
    return i.id, d.id


def test_every_command_type_undoes_and_redoes_exactly():
    doc = Document()
    stack = commands.CommandStack(doc)
    states = [snapshot(doc)]
    i, d = built(stack)
    states += [None, None, snapshot(doc)]
    stack.push(commands.MoveNodes({d: ((0.0, 0.0), (100.0, 50.0))}))
    states.append(snapshot(doc))
    stack.push(commands.SetConfig(doc, d, dict(doc.nodes[d].config, units=7)))
    states.append(snapshot(doc))
    assert doc.analyze()[d].params == 4 * 7 + 7
    stack.push(commands.SetConfig(doc, d, dict(doc.nodes[d].config, name="renamed")))
    states.append(snapshot(doc))
    stack.push(commands.RemoveWire(Wire(i, 0, d, 0)))
    states.append(snapshot(doc))
    stack.push(commands.RemoveNodes(doc, [d]))
    states.append(snapshot(doc))
    final = snapshot(doc)
    for expected in reversed(states[:-1]):
        stack.undo()
        if expected is not None:
            assert snapshot(doc) == expected
    assert snapshot(doc) == states[0] and not stack.can_undo()
    while stack.can_redo():
        stack.redo()
    assert snapshot(doc) == final


def test_removing_nodes_restores_their_wires_and_order():
    doc = Document()
    stack = commands.CommandStack(doc)
    i, d = built(stack)
    e = node(doc, "Dense", units=2)
    stack.push(commands.AddNode(e))
    stack.push(commands.AddWire(Wire(d, 0, e.id, 0)))
    before = snapshot(doc)
    stack.push(commands.RemoveNodes(doc, [d]))
    assert doc.wires == [] and list(doc.nodes) == [i, e.id]
    stack.undo()
    assert snapshot(doc) == before
    assert doc.analyze()[e.id].outputs[0].shape == (None, 2)


def test_impossible_configs_are_refused_with_the_layers_reason():
    doc = Document()
    stack = commands.CommandStack(doc)
    _, d = built(stack)
    with pytest.raises(ConfigError, match="'units' must be a positive integer, got 0"):
        stack.push(commands.SetConfig(doc, d, dict(doc.nodes[d].config, units=0)))
    with pytest.raises(ConfigError, match="Unknown activation"):
        stack.push(commands.SetConfig(doc, d, dict(doc.nodes[d].config, activation="nope")))
    assert doc.nodes[d].config["units"] == 3 and stack.undo_text() == "Connect"


def test_refused_wire_records_nothing():
    doc = Document()
    stack = commands.CommandStack(doc)
    i, d = built(stack)
    with pytest.raises(GraphError):
        stack.push(commands.AddWire(Wire(d, 0, i, 0)))
    assert len(doc.wires) == 1 and stack.undo_text() == "Connect"


def test_clean_state_follows_save_undo_and_redo():
    doc = Document()
    stack = commands.CommandStack(doc)
    assert stack.is_clean()
    built(stack)
    assert not stack.is_clean()
    stack.set_clean()
    stack.undo()
    assert not stack.is_clean()
    stack.redo()
    assert stack.is_clean()
    stack.undo()
    stack.push(commands.AddNode(node(doc, "Dense")))  # the saved state is now unreachable
    assert not stack.is_clean()
    while stack.can_undo():
        stack.undo()
        assert not stack.is_clean()


def test_paste_gives_fresh_ids_and_names_and_one_undo_step():
    doc = Document()
    stack = commands.CommandStack(doc)
    i, d = built(stack)
    fragment = doc.fragment([i, d])
    stack.push(commands.paste_command(doc, fragment))
    assert len(doc.nodes) == 4 and len(doc.wires) == 2
    names = sorted(n.name for n in doc.nodes.values())
    assert names == ["dense", "dense_1", "input_layer", "input_layer_1"]
    assert doc.analyze()[list(doc.nodes)[-1]].params == 15
    stack.undo()
    assert len(doc.nodes) == 2
    with pytest.raises(ConfigError, match="clipboard"):
        commands.paste_command(doc, {"nodes": []})


def test_macro_rolls_back_when_a_part_fails():
    doc = Document()
    stack = commands.CommandStack(doc)
    i, d = built(stack)
    before = snapshot(doc)
    bad = commands.Macro("x", [commands.RemoveWire(Wire(i, 0, d, 0)), commands.AddWire(Wire(d, 0, i, 0))])
    with pytest.raises(GraphError):
        stack.push(bad)
    assert snapshot(doc) == before
