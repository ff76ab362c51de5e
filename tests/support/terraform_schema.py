"""The Terraform providers' schemas, read offline from cdktf's prebuilt bindings.

`terraform validate` needs the provider binaries, which cannot be downloaded here. The npm packages
`@cdktf/provider-*` (pinned in infra/terraform-schema/, installed by `infra/local/bootstrap
--terraform-schema`) are generated from those providers' schemas, and their jsii assembly (`.jsii`)
says, for every resource, data source and provider block, what a configuration may write:

* a resource's settable arguments and nested blocks are the properties of the struct its class's
  constructor takes as `config` (`Cloudfunctions2FunctionConfig`), a nested block's those of its own
  struct (`...ServiceConfig`); a property without `"optional": true` is required;
* each property's docs link to the Terraform docs anchor of its real name (`...#service_account_email`),
  which also survives cdktf's renames of names that clash with its own;
* a nested block is a property whose type is another struct of the assembly: a bare struct when the
  provider allows one block (MaxItems 1), an array of structs when it allows several;
* "computed" has no flag of its own. A computed-only attribute is a read-only getter on the class
  (`url`) or on the block's `...OutputReference` (`service_config.uri`) that has no struct property:
  nothing can set it. Optional-and-computed ones are ordinary optional struct properties.

The google assemblies are about 100 MB of JSON each; `json.load` takes 2 s and 500 MB apiece. A
configuration uses a few dozen of their 20,000 types, so `Assembly` decodes only those: jsii writes
the file pretty-printed with sorted keys, so one submodule's types are one run of members of
`types`, found by a byte search and decoded by the JSON decoder itself.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PACKAGES = ROOT / "infra" / "terraform-schema"
INSTALL_HINT = "run `infra/local/bootstrap --terraform-schema` (infra/local/test does)"

# Meta-arguments Terraform itself handles, in every resource and data block.
META_ARGUMENTS = frozenset({"count", "for_each", "provider", "depends_on", "lifecycle", "provisioner", "connection"})
SCHEMA_BASES = {"cdktf.TerraformResource", "cdktf.TerraformDataSource", "cdktf.TerraformProvider"}

_DOCS_ANCHOR = re.compile(r"\{@link https://registry\.terraform\.io/providers/\S+#([a-z0-9_]+) ")


@dataclass(frozen=True)
class Nested:
    block: Block
    required: bool
    single: bool  # the provider allows one such block (MaxItems 1)


@dataclass(frozen=True)
class Block:
    """What one block may contain: arguments (name -> required), nested blocks, computed-only names."""

    arguments: dict[str, bool] = field(default_factory=dict)
    blocks: dict[str, Nested] = field(default_factory=dict)
    computed_only: frozenset[str] = frozenset()


def _object_run(text: bytes, start: int, indent: int, prefix: bytes) -> dict[str, Any]:
    """The members of a pretty-printed JSON object, from `start` while their keys begin with `prefix`.

    At `indent` spaces a line begins only with one of that object's keys (JSON strings hold no raw
    newline, deeper members are indented further), so a byte search finds where each member starts.
    """
    key = b"\n" + b" " * indent + b'"'
    end = start
    while True:
        end = text.find(key, end + 1)
        if end < 0 or not text.startswith(prefix, end + len(key)):
            break
    if end < 0:  # the run is the object's last: it ends at the object's closing brace
        end = text.index(b"\n" + b" " * (indent - 2) + b"}", start)
    members = text[start:end].decode("utf-8").strip().removesuffix(",")
    return dict(json.loads("{" + members + "}"))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _tf_name(prop: dict[str, Any]) -> str:
    docs = prop.get("docs", {})
    match = _DOCS_ANCHOR.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
    return match.group(1) if match else _snake(prop["name"])


def _structs_in(type_ref: Any, assembly: str) -> list[str]:
    """The assembly's own struct fqns a property's type refers to (directly, in a union or a collection)."""
    if isinstance(type_ref, dict):
        fqn = type_ref.get("fqn")
        if isinstance(fqn, str):
            return [fqn] if fqn.startswith(assembly + ".") else []
        return [found for value in type_ref.values() for found in _structs_in(value, assembly)]
    if isinstance(type_ref, list):
        return [found for value in type_ref for found in _structs_in(value, assembly)]
    return []


class Assembly:
    """One `@cdktf/provider-*` package: which provider (source, version) and its blocks' schemas."""

    def __init__(self, package_dir: Path) -> None:
        meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
        self.name: str = meta["name"]
        self.source: str = meta["cdktf"]["provider"]["name"].removeprefix("registry.terraform.io/")
        self.version: str = meta["cdktf"]["provider"]["version"]
        self._text = (package_dir / ".jsii").read_bytes()
        submodules = _object_run(self._text, self._text.index(b'\n  "submodules": '), 2, b"submodules")["submodules"]
        # "# `google_pubsub_topic`" / "# `data_archive_file`" / "# `provider`" heads each submodule's readme.
        self._submodules: dict[str, str] = {}
        for fqn, info in submodules.items():
            head = re.match(r"# `([^`]+)`", info.get("readme", {}).get("markdown", ""))
            if head:
                self._submodules[head.group(1)] = fqn
        assert self._submodules, f"{package_dir}/.jsii: no submodules found (is it a jsii assembly?)"
        self._types: dict[str, dict[str, Any]] = {}
        self._schemas: dict[str, Block | None] = {}

    def _submodule_types(self, submodule: str) -> dict[str, dict[str, Any]]:
        prefix = (submodule + ".").encode()
        start = self._text.find(b'\n    "' + prefix)
        assert start >= 0, f"{self.name}: no types of {submodule}"
        types = _object_run(self._text, start, 4, prefix)
        for fqn, value in types.items():
            assert value["fqn"] == fqn, f"{self.name}: type {fqn} reads as {value['fqn']}"
        self._types.update(types)
        return types

    def kinds(self) -> list[str]:
        """Every block type the assembly describes (`google_pubsub_topic`, `data_archive_file`, `provider`)."""
        return list(self._submodules)

    def schema(self, kind: str) -> Block | None:
        """`google_pubsub_topic`, `data_archive_file` or `provider`: that block's schema; None if unknown."""
        if kind not in self._schemas:
            submodule = self._submodules.get(kind)
            if submodule is None:
                self._schemas[kind] = None
            else:
                types = self._submodule_types(submodule)
                [cls] = [t for t in types.values() if t["kind"] == "class" and t.get("base") in SCHEMA_BASES]
                [config] = [p["type"]["fqn"] for p in cls["initializer"]["parameters"] if p["name"] == "config"]
                self._schemas[kind] = self._block(config, cls["fqn"])
        return self._schemas[kind]

    def _block(self, struct_fqn: str, reader_fqn: str) -> Block:
        struct = self._types[struct_fqn]
        arguments: dict[str, bool] = {}
        blocks: dict[str, Nested] = {}
        settable: set[str] = set()
        for prop in struct.get("properties", []):
            settable.add(prop["name"])
            name, required = _tf_name(prop), not prop.get("optional", False)
            nested = _structs_in(prop["type"], self.name)
            if nested:
                [inner] = set(nested)
                single = prop["type"].get("fqn") == inner
                blocks[name] = Nested(self._block(inner, inner + "OutputReference"), required, single)
            else:
                arguments[name] = required
        reader = self._types.get(reader_fqn, {})
        computed = frozenset(
            _snake(p["name"])
            for p in reader.get("properties", [])
            if p.get("immutable") and not p.get("static") and not p["name"].endswith("Input")
            and p["name"] not in settable
        )
        return Block(arguments, blocks, computed)


@cache
def assemblies() -> dict[str, Assembly]:
    """Provider source (`hashicorp/google`) -> its assembly, for every package infra/terraform-schema pins."""
    pinned = json.loads((SCHEMA_PACKAGES / "package.json").read_text(encoding="utf-8"))["dependencies"]
    found: dict[str, Assembly] = {}
    for package in pinned:
        package_dir = SCHEMA_PACKAGES / "node_modules" / package
        assert (package_dir / ".jsii").is_file(), f"{package} is not installed in {SCHEMA_PACKAGES}: {INSTALL_HINT}"
        assembly = Assembly(package_dir)
        found[assembly.source] = assembly
    return found


# --- holding HCL to a schema ----------------------------------------------------------------------


def _is_block(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) and item.get("__is_block__") for item in value)


def _dynamic_blocks(body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """`dynamic "x" { content { ... } }` -> {"x": [content body, ...]}."""
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in body.get("dynamic", []):
        for name, dynamic in entry.items():
            if name != "__is_block__":
                found.setdefault(name, []).extend(dynamic.get("content", [{}]))
    return found


def problems(schema: Block, body: dict[str, Any], where: str, *, meta: frozenset[str] = META_ARGUMENTS) -> list[str]:
    """What `terraform validate` would reject in `body` (python-hcl2, explicit_blocks=True), as messages."""
    found: list[str] = []
    dynamic = _dynamic_blocks(body)
    for name, value in body.items():
        if name in {"__is_block__", "dynamic"} or name in meta:
            continue
        if name in schema.arguments:
            if _is_block(value):
                found.append(f"{where}: `{name}` is an argument: write `{name} = ...`, not a block")
        elif name in schema.blocks:
            nested = schema.blocks[name]
            if not _is_block(value):
                found.append(f"{where}: `{name}` is a block: write `{name} {{ ... }}`, not an argument")
                continue
            if nested.single and len(value) + len(dynamic.get(name, [])) > 1:
                found.append(f"{where}: at most one `{name}` block is allowed")
            for item in value:
                found += problems(nested.block, item, f"{where}.{name}", meta=frozenset())
        elif name in schema.computed_only:
            found.append(f"{where}: `{name}` is computed-only (the provider sets it): it cannot be configured")
        else:
            found.append(f"{where}: `{name}` is not an argument or block here"
                         f"{_suggestion(name, [*schema.arguments, *schema.blocks])}")
    for name, contents in dynamic.items():
        if name not in schema.blocks:
            found.append(f"{where}: dynamic `{name}` is not a block here{_suggestion(name, schema.blocks)}")
            continue
        for content in contents:
            found += problems(schema.blocks[name].block, content, f"{where}.{name}", meta=frozenset())
    present = set(body) | set(dynamic)
    found += [f"{where}: required argument `{name}` is missing"
              for name, required in schema.arguments.items() if required and name not in present]
    found += [f"{where}: required block `{name}` is missing"
              for name, nested in schema.blocks.items() if nested.required and name not in present]
    return found


def _suggestion(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _named(section: list[dict[str, Any]]) -> Iterator[tuple[str, Any]]:
    for entry in section:
        for key, value in entry.items():
            if key != "__is_block__":
                yield key, value


def required_providers(documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Local provider name -> {"source": ..., "version": ...}, from the `terraform` blocks."""
    found: dict[str, dict[str, str]] = {}
    for doc in documents.values():
        for terraform in doc.get("terraform", []):
            for requirements in terraform.get("required_providers", []):
                found.update(dict(_named([requirements])))
    return found


def provider_of(kind: str, body: dict[str, Any]) -> str:
    """The local provider name a block uses: its `provider` meta-argument, else its type's prefix (Terraform's rule)."""
    explicit = body.get("provider")
    if isinstance(explicit, str):
        return explicit.removeprefix("${").removesuffix("}").split(".")[0]
    return kind.split("_", maxsplit=1)[0]


@dataclass(frozen=True)
class Declared:
    """One resource, data or provider block of a configuration, and its schema (None: `unknown` says why)."""

    file: str
    address: str  # google_x.name, data.archive_file.name, provider.google
    body: dict[str, Any]
    schema: Block | None
    unknown: str = ""


def declared_blocks(documents: dict[str, dict[str, Any]], providers: dict[str, dict[str, str]]) -> Iterator[Declared]:
    """Every resource, data and provider block of `documents` (file name -> python-hcl2 document)."""
    for file, doc in documents.items():
        # (address, local provider name, schema key, body)
        blocks = [
            (f"{prefix}{kind}.{name}", provider_of(kind, body), key_prefix + kind, body)
            for section, prefix, key_prefix in (("resource", "", ""), ("data", "data.", "data_"))
            for kind, named in _named(doc.get(section, []))
            for name, body in named.items()
        ]
        blocks += [(f"provider.{local}", local, "provider", body) for local, body in _named(doc.get("provider", []))]
        for address, local, key, body in blocks:
            source = providers.get(local, {}).get("source", "")
            assembly = assemblies().get(source)
            if assembly is None:
                unknown = (f"no schema is pinned for {source}: add its @cdktf package to {SCHEMA_PACKAGES}" if source
                           else f"provider `{local}` is not in required_providers")
                yield Declared(file, address, body, None, unknown)
                continue
            schema = assembly.schema(key)
            unknown = "" if schema else (f"{assembly.source} {assembly.version} has no type `{key}`"
                                         f"{_suggestion(key, assembly.kinds())}")
            yield Declared(file, address, body, schema, unknown)


def configuration_problems(documents: dict[str, dict[str, Any]], providers: dict[str, dict[str, str]]) -> list[str]:
    """Every resource, data and provider block of `documents` against its schema."""
    found: list[str] = []
    for block in declared_blocks(documents, providers):
        where = f"{block.file}: {block.address}"
        if block.schema is None:
            found.append(f"{where}: {block.unknown}")
        else:
            meta = frozenset() if block.address.startswith("provider.") else META_ARGUMENTS
            found += problems(block.schema, block.body, where, meta=meta)
    return found


# `google_x.name.attr`, `data.archive_file.name.attr`, with [index] / ["key"] between the parts.
_REFERENCE = re.compile(
    r"(?<![\w.])((?:data\.)?[a-z][a-z0-9]*_[a-z0-9_]+)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?((?:\.[a-z_][a-z0-9_]*(?:\[\d+\])?)+)"
)


def reference_problems(documents: dict[str, dict[str, Any]], providers: dict[str, dict[str, str]]) -> list[str]:
    """Every `TYPE.NAME.attribute...` a configuration reads must exist in that type's schema, block by block."""
    declared = {
        tuple(block.address.rsplit(".", 1)): block.schema
        for block in declared_blocks(documents, providers)
        if block.schema is not None
    }
    found: list[str] = []
    for file, doc in documents.items():
        for kind, name, chain in _REFERENCE.findall(json.dumps(doc)):
            schema = declared.get((kind, name))
            path = kind + "." + name
            for part in re.sub(r"\[\d+\]", "", chain).split(".")[1:]:
                if schema is None:
                    break
                path += "." + part
                if part in schema.blocks:
                    schema = schema.blocks[part].block
                elif part in schema.arguments or part in schema.computed_only or part == "id":
                    schema = None  # an attribute: what follows indexes its value
                else:
                    found.append(f"{file}: `{path}` reads an attribute its schema does not have"
                                 f"{_suggestion(part, [*schema.arguments, *schema.computed_only, *schema.blocks])}")
                    schema = None
    return sorted(set(found))


def version_problems(providers: dict[str, dict[str, str]]) -> list[str]:
    """Each provider's constraint must pin exactly the version whose schema is checked: no other can be installed."""
    found: list[str] = []
    for local, requirement in providers.items():
        assembly = assemblies().get(requirement.get("source", ""))
        if assembly is None:
            found.append(f"provider `{local}` ({requirement.get('source')}): no schema pinned in {SCHEMA_PACKAGES}")
            continue
        constraint = requirement.get("version", "")
        pinned = re.fullmatch(r"=?\s*(\d+\.\d+\.\d+)", constraint.strip())
        if not pinned or pinned.group(1) != assembly.version:
            found.append(f"provider `{local}`: version = \"{constraint}\" must be exactly \"{assembly.version}\", the "
                         f"version of the schema checked ({assembly.name}); bump both together")
    return found
