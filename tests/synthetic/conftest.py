"""The generators are tested with the fixtures of the stages they feed."""

from tests.documents.conftest import *  # noqa: F403
from tests.edge.conftest import *  # noqa: F403
from tests.stream.conftest import *  # noqa: F403
