"""Trusted documents: the operations a client's code was built with, loaded at start.

``GRAPHQL_TRUSTED_DOCUMENTS`` names a ``.graphql`` file, a JSON manifest, or a directory
holding any number of both (searched recursively). A manifest maps ids to documents, either
``{"<sha256>": "<document>", ...}`` or Apollo's persisted-query manifest (``{"format":
"apollo-persisted-query-manifest", "operations": [{"id", "body", ...}]}``). A ``.graphql``
file may hold several named operations and the fragments they use.

What a client may send for a trusted operation, as text or as ``persistedQuery.sha256Hash``:

- a whole file or manifest entry, exactly (with ``operationName`` when it holds several);
- one operation on its own, with the fragments it uses -- as written in the file when it
  uses none, or in any layout: the text is compared after parsing and printing, so spacing,
  comments and the order of definitions do not matter, but every field, argument and
  directive does.

The sha256 of each whole text and of each operation's printed form (graphql-core's
``print_ast`` of the operation followed by its fragments in the order the file defines them)
are known hashes, so a client can send the hash alone.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
    print_ast,
    visit,
)
from graphql.language import Visitor
from graphql.utilities import get_operation_ast

from app.graphql.cost import parse_document
from app.graphql.limits import MAX_TOKENS

GRAPHQL_SUFFIXES = (".graphql", ".gql")
MAX_REMEMBERED = 1024


class TrustedDocumentsError(ValueError):
    """The trusted documents could not be loaded; the message names the file and why."""


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.names.add(node.name.value)


def _fragments(
    document: DocumentNode, operation: OperationDefinitionNode
) -> list[FragmentDefinitionNode]:
    """The fragments ``operation`` uses, transitively, in the order the document has them."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    needed: set[str] = set()
    todo: list[OperationDefinitionNode | FragmentDefinitionNode] = [operation]
    while todo:
        spreads = _Spreads()
        visit(todo.pop(), spreads)
        for name in spreads.names - needed:
            if name in fragments:
                needed.add(name)
                todo.append(fragments[name])
    return [d for name, d in fragments.items() if name in needed]


def standalone(document: DocumentNode, operation: OperationDefinitionNode) -> str:
    """The operation and the fragments it uses, printed in a canonical way."""
    used = (operation, *_fragments(document, operation))
    return print_ast(DocumentNode(definitions=used))


class TrustedDocuments:
    def __init__(self) -> None:
        self.by_hash: dict[str, str] = {}  # sha256 (or a manifest's id) -> text to run
        self.canonical: set[str] = set()  # each trusted operation, printed with its fragments
        self.operations = 0
        self._checked: OrderedDict[str, bool] = OrderedDict()

    @classmethod
    def load(cls, path: str | Path) -> TrustedDocuments:
        root = Path(path)
        if not root.exists():
            raise TrustedDocumentsError(f"{root} does not exist")
        found = cls()
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            if file.suffix == ".json":
                for key, text in _manifest(file):
                    found.add(text, f"{file} ({key})", key=key)
            elif file.suffix in GRAPHQL_SUFFIXES or not root.is_dir():
                found.add(file.read_text(encoding="utf-8"), str(file))
        if not found.operations:
            raise TrustedDocumentsError(f"{root} holds no GraphQL operation")
        return found

    def add(self, text: str, origin: str, *, key: str | None = None) -> None:
        try:
            document = parse(text, max_tokens=MAX_TOKENS * 25)  # a file may hold many
        except GraphQLError as exc:
            raise TrustedDocumentsError(f"{origin}: {exc.message}") from None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.by_hash[sha256(text)] = text
        if key:
            self.by_hash[key.lower()] = text
        for operation in operations:
            printed = standalone(document, operation)
            self.canonical.add(printed)
            self.by_hash[sha256(printed)] = printed
            if operation.loc is not None and not _fragments(document, operation):
                written = text[operation.loc.start : operation.loc.end]  # as in the file
                self.by_hash[sha256(written)] = written
            self.operations += 1

    def allows(self, query: str, operation_name: str | None) -> bool:
        """Whether ``query`` (its operation ``operation_name``) is a trusted operation."""
        if sha256(query) in self.by_hash:
            return True
        key = f"{operation_name or ''}\n{query}"
        known = self._checked.get(key)
        if known is None:
            known = self._canonical_match(query, operation_name)
            self._checked[key] = known
            if len(self._checked) > MAX_REMEMBERED:
                self._checked.popitem(last=False)
        return known

    def _canonical_match(self, query: str, operation_name: str | None) -> bool:
        try:
            document = parse_document(query, MAX_TOKENS)
        except GraphQLError:
            return False
        operation = get_operation_ast(document, operation_name)
        return operation is not None and standalone(document, operation) in self.canonical


def _manifest(file: Path) -> Iterator[tuple[str, str]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustedDocumentsError(f"{file}: not a JSON manifest ({exc})") from None
    entries: Iterable[tuple[object, object]]
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        entries = (
            (op.get("id"), op.get("body")) for op in data["operations"] if isinstance(op, dict)
        )
    elif isinstance(data, dict):
        entries = data.items()
    else:
        raise TrustedDocumentsError(f"{file}: a manifest is an object of id -> document")
    for key, text in entries:
        if not isinstance(key, str) or not isinstance(text, str):
            raise TrustedDocumentsError(f"{file}: every entry needs a string id and document")
        yield key, text
