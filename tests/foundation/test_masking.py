from leadbot.masking import mask_phone, mask_phones_in


def test_mask_phone_keeps_prefix_and_suffix() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("") == ""


def test_mask_phones_inside_text() -> None:
    out = mask_phones_in("call 13812345678 or +86 139-0000-1111 today")
    assert "13812345678" not in out and "138****5678" in out
    assert "139****1111" in out


def test_dates_times_and_ids_are_not_mistaken_for_phones() -> None:
    text = "2026-11-24T00:41:23.261Z lead 1234567 amount 120000.00 msgid 4561255354251345929"
    assert mask_phones_in(text) == text


def test_landlines_are_masked() -> None:
    assert "021-****8888" not in mask_phones_in("总机 021-68888888")
    assert "68888888" not in mask_phones_in("总机 021-68888888")
