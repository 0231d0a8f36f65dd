"""The modules of 第二條, one class each, and the tables the desk finds them by.

To add a module: write ``desk/modules/<name>.py`` with one class (a ``DocumentModule`` when
its mail opens a document of a flow in ``routing.rules``), give it a default address in
``daemon.config.DEFAULT_ADDRESSES`` and list it in :data:`MODULES` below, in the order HELP
shows the modules (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from yizhan.daemon.desk.modules.baoxiu import Baoxiu
from yizhan.daemon.desk.modules.base import DocumentModule, Module, Prepared
from yizhan.daemon.desk.modules.biangeng import Biangeng
from yizhan.daemon.desk.modules.duban import Duban
from yizhan.daemon.desk.modules.fawen import Fawen
from yizhan.daemon.desk.modules.gonggao import Gonggao
from yizhan.daemon.desk.modules.hanjian import Hanjian
from yizhan.daemon.desk.modules.qianbao import Qianbao
from yizhan.daemon.desk.modules.shouwen import Shouwen
from yizhan.daemon.desk.modules.xinxi import Xinxi
from yizhan.daemon.desk.modules.xiujia import Xiujia
from yizhan.daemon.desk.modules.ziliao import Ziliao
from yizhan.routing.effects import Effect

__all__ = ["DOCUMENT_MODULES", "EFFECTS", "MODULES", "DocumentModule", "Module", "Prepared"]

_ALL: Final[tuple[Module, ...]] = (
    Fawen(),
    Shouwen(),
    Qianbao(),
    Hanjian(),
    Gonggao(),
    Xiujia(),
    Biangeng(),
    Duban(),
    Xinxi(),
    Ziliao(),
    Baoxiu(),
)

#: Every module by its name (its key in ``[addresses]``), in the order HELP lists them.
MODULES: Final[Mapping[str, Module]] = MappingProxyType({m.name: m for m in _ALL})

#: The modules whose mail opens a document of a flow, by the kind of their documents.
DOCUMENT_MODULES: Final[Mapping[str, DocumentModule]] = MappingProxyType(
    {m.name: m for m in _ALL if isinstance(m, DocumentModule)}
)

#: Which module carries out each kind of effect record (``routing.effects``).
EFFECTS: Final[Mapping[type[Effect], Module]] = MappingProxyType(
    {effect: m for m in _ALL for effect in m.effects}
)
