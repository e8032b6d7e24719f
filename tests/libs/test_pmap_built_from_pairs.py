"""A ``PMap`` built from pairs (a snapshot's decode) is the map ``set`` would have built:
its empty slots are the shared empty ones, which iteration skips without looking inside."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from libs.runtime.persistent import _EMPTY_INNER, PMap


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.integers(), max_size=300))
def test_a_pmap_from_pairs_iterates_like_the_dict_and_like_one_built_by_set(model: dict[str, int]) -> None:
    built = PMap(model)
    stepped: PMap[str, int] = PMap()
    for key, value in model.items():
        stepped = stepped.set(key, value)
    assert sorted(built) == sorted(stepped) == sorted(model)
    assert dict(built.items()) == model and len(built) == len(model)
    assert [inner is _EMPTY_INNER for inner in built._root] == [not any(inner) for inner in built._root]
    for key in list(model)[:20]:
        built = built.without(key)
        del model[key]
        assert sorted(built) == sorted(model)
