"""`GenerateOptions` is the one definition of `generate()`'s options: every twin agrees with it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import attrs
import click
import pytest

import picpik_async as picpik
from picpik_async import _batch, cli
from picpik_async._actions import sdxl_request

FIELDS = attrs.fields_dict(picpik.GenerateOptions)
#: A value other than the default for each option, and a request field it must change.
CHANGED: dict[str, tuple[Any, str]] = {
    "negative_prompt": ("blurry", "negative_prompts"),
    "model": ("Other Model", "main_model"),
    "width": (768, "width"),
    "height": (512, "height"),
    "seed": (42, "seed"),
    "batch_size": (2, "batch_size"),
    "tiling": (True, "tiling"),
    "translate_prompts": (False, "translate_prompts"),
    "refer_strength": (0.3, "image2image"),
    "sub_models": (["A LoRA"], "sub_model_list"),
}


def keyword_parameters(function: Any, *, without: set[str]) -> dict[str, inspect.Parameter]:
    """A function's keyword-only parameters, minus some."""
    parameters = inspect.signature(function).parameters.values()
    return {
        p.name: p
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in without
    }


def test_generate_keywords_are_the_options() -> None:
    """AsyncClient.generate() takes exactly the options as keywords, with their defaults."""
    keywords = keyword_parameters(picpik.AsyncClient.generate, without={"timeout"})
    assert list(keywords) == list(FIELDS)
    for name, parameter in keywords.items():
        assert parameter.default == FIELDS[name].default, name


def test_generate_many_accepts_exactly_the_options() -> None:
    """generate_many() passes each option on and refuses any other name before I/O."""
    emulator = picpik.testing.Emulator()
    client = picpik.AsyncClient(
        public_key=emulator.public_key,
        private_key=emulator.private_key,
        base_url=emulator.url,
        transport=emulator.transport(),
    )
    with pytest.raises(picpik.ValidationError, match=r"unknown generate_many\(\) option"):
        client.generate_many(["a cat"], colour="red")
    for name in FIELDS:  # known names pass the check (then the client is not open)
        options: dict[str, Any] = {name: FIELDS[name].default}
        with pytest.raises(picpik.ClientClosedError):
            client.generate_many(["a cat"], **options)


def test_batch_lines_take_exactly_the_options() -> None:
    """A JSONL batch line may name every option, and nothing else."""
    assert picpik.GenerateOptions.names() == _batch.GENERATE_OPTIONS
    line = json.dumps({"prompt": "a cat", "width": 512, "sub_models": ["x"]})
    (item,) = _batch.read_prompts(line, jsonl=True)
    assert dict(item.options) == {"width": 512, "sub_models": ["x"]}
    with pytest.raises(picpik.ValidationError, match="colour"):
        _batch.read_prompts(json.dumps({"prompt": "a cat", "colour": "red"}), jsonl=True)


def test_cli_offers_every_option_but_the_listed_ones() -> None:
    """`picpik generate` has a flag for each option (same default) except those listed."""
    assert set(cli._GENERATE_CLI) | cli._NOT_ON_THE_CLI == set(FIELDS)
    assert not set(cli._GENERATE_CLI) & cli._NOT_ON_THE_CLI
    command = cli.main.commands["generate"]
    params = {p.name: p for p in command.params if isinstance(p, click.Option)}
    for name in cli._GENERATE_CLI:
        if name in cli._INVERTED:  # an off-switch: off by default, for a field on by default
            assert params[cli._INVERTED[name]].default is False, name
            assert FIELDS[name].default is True, name
            continue
        assert name in params, name
        assert params[name].default == FIELDS[name].default, name


def test_cli_defaults_are_the_options_defaults() -> None:
    """`picpik generate PROMPT` with no flags asks for exactly the default options."""
    context = cli.main.commands["generate"].make_context("generate", ["a cat"])
    assert picpik.GenerateOptions(**cli._generate_kwargs(context.params)) == (
        picpik.GenerateOptions()
    )


def test_cli_options_reach_the_request(tmp_path: Path) -> None:
    """The parsed CLI options become the same request as generate()'s keywords would."""
    command = cli.main.commands["generate"]
    args = ["a cat", "--width", "768", "--seed", "7", "--no-translate", "--tiling"]
    context = command.make_context("generate", args)
    kwargs = cli._generate_kwargs(context.params)
    options = picpik.GenerateOptions(**kwargs)
    assert options == picpik.GenerateOptions(
        width=768, seed=7, translate_prompts=False, tiling=True
    )


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_every_option_reaches_the_request(name: str) -> None:
    """Changing any one option changes the SDXL request that generate() sends."""
    value, request_field = CHANGED[name]
    uri = "data:image/png;base64,AAAA"
    default = sdxl_request("a cat", picpik.GenerateOptions(), image_uri=uri)
    changed = sdxl_request("a cat", picpik.GenerateOptions(**{name: value}), image_uri=uri)
    assert getattr(changed, request_field) != getattr(default, request_field)


def test_every_option_is_covered_here() -> None:
    """This file knows every option (so a new one cannot skip these checks)."""
    assert set(CHANGED) | {"image"} == set(FIELDS)
