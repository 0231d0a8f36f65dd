"""End-to-end: the loopholes of issue 15 part 8, closed, over SMTP on loopback."""

from __future__ import annotations

from tests.daemon.test_flows import Daemon, one, text

pytest_plugins = ["tests.daemon.test_flows"]

#: Every unit of the demo bureau but the bureau itself, named one by one.
EVERY_UNIT = "辦公室、信息化處、人事處、檢驗監管處、衛生檢疫處、財務處、大連分局、丹東分局"


def test_a_bulletin_to_every_unit_one_by_one_is_an_all_bureau_bulletin(daemon: Daemon) -> None:
    # 第二十三條: listing every unit is the whole bureau, refused like 範圍：全局 unless special.
    daemon.send(
        "xiewenbin", "gonggao@oa.example", "辦公樓停電公示", f"範圍：{EVERY_UNIT}\n\n停電。"
    )
    refused = text(one(daemon, "xiewenbin"))
    assert "第二十三條" in refused and "特殊" in refused
    # One unit fewer is an ordinary bulletin, to the unit head for review.
    fewer = EVERY_UNIT.rsplit("、", 1)[0]
    daemon.send("xiewenbin", "gonggao@oa.example", "辦公樓停電公示", f"範圍：{fewer}\n\n停電。")
    assert "第二十三條" not in text(one(daemon, "xiewenbin"))
    assert one(daemon, "liangguoqiang")["X-Yizhan-Action"] == "approve"


def test_only_clerks_and_the_office_register_incoming_documents(daemon: Daemon) -> None:
    # 第二十一條: a member of staff is told to give it to the clerk; nothing is registered.
    daemon.send("xiewenbin", "shouwen@oa.example", "海關總署關於口岸衛生檢疫的通知", "原文。")
    refused = one(daemon, "xiewenbin")
    assert "第二十一條" in text(refused) and refused["X-Yizhan-Doc"] is None
    daemon.send("songjia", "shouwen@oa.example", "海關總署關於口岸衛生檢疫的通知", "原文。")
    assert one(daemon, "songjia")["X-Yizhan-Kind"] == "shouwen"
