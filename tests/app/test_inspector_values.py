"""What a user types in the inspector's free fields becomes a value: JSON or Python literals, never a rewritten text."""

import pytest

from app.inspector import parse_literal


@pytest.mark.parametrize("text, value", [
    ("", None), ("None", None), ("null", None), ("true", True), ("False", False), ("3", 3), ("-2.5", -2.5),
    ("(3, 4)", (3, 4)), ("[1, null]", [1, None]), ('{"a": 1, "b": false}', {"a": 1, "b": False}),
    ("(null, true)", (None, True)),  # JSON's words inside a Python tuple
    ("{'a': None}", {"a": None}), ("'relu'", "relu"),
    # Quoted text is text, whatever words it holds.
    ("('nullable', 'trueish')", ("nullable", "trueish")), ('"false alarm"', "false alarm"),
    ("{'null': 'true'}", {"null": "true"}), ("('a', null)", ("a", None)),
])
def test_typed_text_is_parsed_as_a_literal(text, value):
    got = parse_literal(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["{{nope", "nullable", "(1, Null)", "true_", "__import__('os')", "f(null)"])
def test_text_that_is_not_a_literal_is_refused_with_the_text(text):
    with pytest.raises(ValueError, match="is not a value") as err:
        parse_literal(text)
    assert text in str(err.value)


def test_a_list_of_words_is_shown_with_its_quotes_and_reads_back_as_the_same_words():
    from app.inspector import _text_of

    words = ["", "[UNK]", "the", "5", "don't", "naïve"]  # a TextVectorization vocabulary: "5" is a word, not 5
    assert _text_of(words) == '["", "[UNK]", "the", "5", "don\'t", "naïve"]'
    assert parse_literal(_text_of(words)) == words
    assert _text_of([2, None, 7]) == "2, None, 7"  # numbers are shown as before
