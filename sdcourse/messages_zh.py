"""The Chinese of every message sdcourse shows: English (as written in the code) -> Chinese.

See sdcourse/i18n.py for how a message is looked up; `{}` stands for a value (`{0}`, `{1}` when
the Chinese puts the values in another order). tests/test_i18n.py checks that every message in
the code has its entry here and that no entry is left over.
"""
from ._messages_zh_checks_a import MESSAGES as _A
from ._messages_zh_checks_b import MESSAGES as _B
from ._messages_zh_models import MESSAGES as _E
from ._messages_zh_notebooks import MESSAGES as _D
from ._messages_zh_ui import MESSAGES as _C

MESSAGES = {**_A, **_B, **_C, **_D, **_E}
