"""The README's table of error codes per mutation covers the schema and is kept honest."""

from __future__ import annotations

from app.graphql.schema import schema
from app.platform.errors import ErrorCode
from tests import error_codes


def test_every_mutation_has_a_row_naming_only_contract_codes():
    rows = error_codes.documented()
    mutations = set(schema._schema.mutation_type.fields)
    assert mutations - set(rows) == set(), "mutations without a row"
    assert set(rows) - mutations - {error_codes.EVERY} == set(), "rows for no mutation"
    assert rows[error_codes.EVERY], "the codes every mutation can answer"
    for name, codes in rows.items():
        assert codes <= {str(c) for c in ErrorCode}, name


async def test_the_codes_mutations_answer_are_recorded_for_the_check(api):
    """The check at the end of the run sees what clients see (aliases resolved)."""
    error_codes.SEEN.discard(("deleteStudent", "NOT_FOUND"))
    body = await api.gql('mutation { gone: deleteStudent(id: "000000000000000000000000") }')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert ("deleteStudent", "NOT_FOUND") in error_codes.SEEN
