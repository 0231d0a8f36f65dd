"""SEARCH words at cmd@ (搜索): the documents and materials the sender may see, ranked."""

from __future__ import annotations

from yizhan.daemon.desk.commands.base import Usage
from yizhan.daemon.desk.request import Request
from yizhan.daemon.desk.search import Found
from yizhan.mailstore import audit
from yizhan.routing import materials
from yizhan.routing.commands import Command, Verb
from yizhan.routing.search import query_terms

__all__ = ["Search"]


class Search:
    """Titles, numbers, bodies and attachment text of every document the sender may see, and
    the internal materials in their scope unless their mailbox is outside (第十七條); each hit
    with links that fetch it. Audited. See ``EmailCommand``."""

    verb = Verb.SEARCH
    usages = (
        Usage(
            example="搜索 檢疫 公告",
            form="SEARCH words",
            summary="在標題、正文、附件中查找 search documents",
        ),
    )
    doc = r"""### 搜索 · SEARCH — 搜索文件

```
To: cmd@oa.example
Subject: 搜索 檢疫 公告
```

```
To: cmd@oa.example
Subject: SEARCH quarantine notice
```

在您可查看的所有文件（STATUS 能查的那些，任何狀態，包括已辦結、已歸檔的）的標題、文號、正文和附件文字（.docx .xlsx .pptx .odt .pdf .txt 等）中查找，以及您在使用範圍內的內部資料。多個詞語須同時出現；中文不必分詞，兩字詞、單字和英文單詞（不分大小寫）都能找到，簡繁體通用。結果按相關程度排列（標題 > 正文 > 附件，出現次數多的在前），最多列出 20 件，每件有文號（或 #編號）、標題、狀態，以及一鍵鏈接：「查詢」回覆辦理狀態，「下載」發來全文及附件。郵箱在本單位以外的人搜不到內部資料。
Searches the titles, numbers, bodies and attachment text of every document you may see (those
STATUS shows you, in any state, closed and archived ones too) and the internal materials in
whose scope you are. All the words must be found; Chinese needs no spaces; two-character words,
single characters and English words (any case) are found, in Simplified or Traditional script.
Hits are ranked (title over body over attachment, more often first), at most 20, each with its
number, title and state and one-click links: STATUS and GET. Someone whose mailbox is outside
the organisation gets no materials listed.

回覆 Answer (in your language; zh_CN here):

```
“檢疫 公告”的搜索结果（最相关的在前）：

1. 遼檢衛〔2026〕3號 關於口岸衛生檢疫公告的通知
   状态: closed  出现在: 标题, 附件
   查询: <mailto:cmd@oa.example?subject=%E6%9F%A5%E8%AF%A2%20%2312>
   下载: <mailto:cmd@oa.example?subject=%E4%B8%8B%E8%BD%BD%20%2312>
```

升級後，舊文件由 `yizhan search reindex` 建立索引（`--all` 重新提取全部）；未建索引的文件也會在搜索時分批補上。
After an upgrade, `yizhan search reindex` indexes the documents made before the search index
(`--all` extracts everything again); searches also index missing ones a batch at a time."""  # noqa: E501

    def process(self, request: Request, command: Command) -> str:
        """The results list, in the sender's language."""
        person = request.person
        assert person is not None
        finder, directory = request.desk.finder, request.directory
        words = command.argument.strip()
        if not query_terms(words):
            return finder.results_text(Found(hits=(), more=False), words, person)
        outside = materials.outside_refusal(person, request.desk.domain, finder.domains(directory))
        found = finder.find(
            request.session, person.account, words, directory, with_materials=outside is None
        )
        audit.record(
            request.session,
            at=request.now,
            actor=person.account,
            action="search",
            detail={"words": words[:200], "hits": [h.document_id for h in found.hits]},
        )
        return finder.results_text(found, words, person)
