"""A real browser uploads pairs on the Fine-tune tab, trains a tiny model and sees the result."""

from __future__ import annotations

import json


def test_finetune_in_browser(page, tmp_path):
    topics = [
        ("당뇨병 치료", "당뇨병 치료는 식이요법과 운동, 인슐린 주사로 혈당을 관리합니다."),
        ("고혈압 음식", "고혈압 환자는 소금을 줄이고 채소와 과일을 많이 먹어야 합니다."),
        ("전세 보증금", "전세 계약 때 확정일자를 받으면 보증금을 보호받을 수 있습니다."),
        ("여권 발급", "여권을 새로 발급받으려면 신분증과 여권용 사진을 준비해야 합니다."),
        ("감기 증상", "감기에 걸리면 콧물과 기침이 나고 목이 아픈 증상이 나타납니다."),
        ("연말정산 공제", "연말정산에서 의료비와 교육비는 세액공제를 받을 수 있습니다."),
        ("클라우드 보안", "클라우드 서비스는 접근 권한 관리와 암호화로 보안을 지킵니다."),
        ("김치찌개 끓이는 법", "김치찌개는 잘 익은 김치와 돼지고기를 볶은 뒤 물을 붓고 끓입니다."),
        ("주택담보대출 금리", "주택담보대출 금리는 은행마다 다르므로 여러 곳을 비교해야 합니다."),
        ("운전면허 갱신", "운전면허를 갱신하려면 적성검사를 받고 사진과 신분증을 가져가야 합니다."),
        ("개인정보 보호", "개인정보 보호법은 개인의 정보를 수집하고 이용하는 기준을 정합니다."),
    ]  # at least 10 distinct passages, so the trainer holds some out and reports before/after metrics
    rows = [{"query": f"{q} {s}", "positive": p} for q, p in topics for s in ("", "방법", "정보", "알려줘")]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")

    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#ft-pairs input[type=file]").set_input_files(str(pairs))
    page.locator("#ft-size").get_by_text("tiny").click()
    limit = page.locator("#ft-time input[type=number]")
    limit.fill("20")
    limit.press("Enter")
    page.locator("#ft-start").click()
    page.locator("#ft-status").get_by_text("Done").wait_for(timeout=240_000)
    text = page.locator("#ft-status").inner_text()
    assert "pairs" in text and "added to your model list" in text
    page.locator("#ft-metrics [role=gridcell]", has_text="hybrid").first.wait_for()
    # the new model is offered in the Explore tab's picker of this visitor
    page.get_by_role("tab", name="Explore").click()
    page.locator("#explore-model input").click()
    page.locator("#explore-model [role=option]", has_text="fine-tuned").first.wait_for()
