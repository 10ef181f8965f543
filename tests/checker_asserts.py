"""Shared asserts for the checker tests (a plain module beside the tests; pytest puts tests/ on the
path): a verdict without raising, a mistake named in the result and in the error, a stub's [todo]
and reference, learner-style stubs."""
import re

import pytest
from torch import nn

from sdcourse.checks import ExerciseError


def verdict(checker, answer):
    return checker(answer, raise_on_failure=False)


def assert_names(checker, answer, mistake):
    result = verdict(checker, answer)
    assert not result.passed and result.mistake == mistake, result
    with pytest.raises(ExerciseError, match=re.escape(mistake)):
        checker(answer)


def assert_todo_then_reference(checker, stub, reference, capsys):
    assert checker(stub) is reference
    assert capsys.readouterr().out.startswith(f"[todo] {checker.exercise_name}:")


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError()


class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        raise NotImplementedError()
