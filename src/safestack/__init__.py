"""safestack: an offline safety stack for language models.

Filter the data, red-team the model, fix what failed, gate the release, guard it in production.
The shared vocabulary lives in `safestack.policy` and `safestack.records`; `Judge` is the entry point
for judging text: `Judge.default().check("...")` returns a `Verdict`.
"""

from importlib.metadata import PackageNotFoundError, version

from safestack.judge import Judge
from safestack.policy import Policy, load_policy
from safestack.records import Action, Conversation, Finding, Message, Verdict

try:
    __version__ = version("safestack")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+local"

__all__ = [
    "Action",
    "Conversation",
    "Finding",
    "Judge",
    "Message",
    "Policy",
    "Verdict",
    "__version__",
    "load_policy",
]
