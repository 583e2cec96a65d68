def test_judged_span_cuts_text_and_logprobs_to_the_first_line() -> None:
    from router.engines.base import Completion, TokenLogprob
    from router.escalation.selfref_data import judged_span

    tokens = [TokenLogprob(t, i, -0.1 * (i + 1)) for i, t in enumerate([" 8", "1", "\nUser", ":"])]
    cut = judged_span(Completion(text=" 81\nUser:", logprobs=tokens))
    assert cut.text == " 81"
    assert [t.token for t in cut.logprobs or ()] == [" 8", "1"]
    whole = Completion(text=" 81", logprobs=tokens[:2])
    assert judged_span(whole) is whole
