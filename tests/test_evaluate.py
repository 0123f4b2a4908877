import math

import pytest
import torch
import torch.nn.functional as F

from engine.data import digits_splits
from engine.evaluate import Stats, evaluate
from engine.models import build_model
from engine.splits import Split


@pytest.fixture(scope="module")
def setup():
    m = build_model("digits_cnn", seed=1).eval()
    return m, digits_splits()["test"]


def test_batch_size_does_not_change_the_numbers(setup):
    m, split = setup
    ref = evaluate(m, split, len(split))
    for bs in (1, 7, 64, 1000):
        st = evaluate(m, split, bs)
        assert st.loss == pytest.approx(ref.loss, rel=1e-6)
        assert st.correct == ref.correct and st.count == len(split)


def test_against_a_plain_computation(setup):
    m, split = setup
    with torch.no_grad():
        logits = m(split.x)
    st = evaluate(m, split, 50)
    assert st.loss == pytest.approx(F.cross_entropy(logits, split.y).item(), rel=1e-5)
    assert st.acc == pytest.approx(100.0 * (logits.argmax(1) == split.y).float().mean().item())
    # The reference's MSE: nn.MSELoss() (mean over classes) of softmax against one-hot.
    mse = F.mse_loss(logits.softmax(1), F.one_hot(split.y, 10).float()).item()
    assert evaluate(m, split, 50, "mse").loss == pytest.approx(mse, rel=1e-5)


def test_stats_merge_exactly():
    a, b = Stats(3.0, 2.0, 4), Stats(1.0, 1.0, 2)
    assert (a + b).loss == pytest.approx(4.0 / 6) and (a + b).acc == pytest.approx(50.0)


def test_model_left_in_eval_mode_is_used_as_is(setup):
    m, split = setup
    s = Split(split.x[:10], split.y[:10])
    before = [b.clone() for b in m.buffers()]
    evaluate(m, s, 3)
    assert all(torch.equal(x, y) for x, y in zip(before, m.buffers(), strict=True))


def test_non_finite_logits_are_never_correct():
    from engine.evaluate import sample_stats

    logits = torch.tensor([[float("nan")] * 3, [0.0, 5.0, 0.0], [float("inf"), 0.0, 0.0]])
    per, correct = sample_stats(logits, torch.tensor([0, 1, 0]))
    assert correct.sum().item() == 1 and torch.isnan(per.sum())


def test_sample_stats_match_torch_cross_entropy_and_argmax():
    from engine.evaluate import sample_stats

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 200, 10, generator=g) * 5
    logits[0, :20] = 1.0  # ties everywhere: the first maximal class is the prediction
    y = torch.randint(0, 10, (200,), generator=g)
    per, correct = sample_stats(logits, y)
    for k in range(3):
        torch.testing.assert_close(
            per[k], F.cross_entropy(logits[k], y, reduction="none"), rtol=1e-6, atol=1e-6
        )
        assert torch.equal(correct[k], logits[k].argmax(-1) == y)


def test_segment_stats_sum_each_split_and_keep_nan_in_its_own():
    from engine.evaluate import segment_stats, stats_of

    losses = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    correct = torch.tensor([True, False, True, True, False, False])
    a, b = segment_stats(losses, correct, (4, 2))
    assert (a.loss_sum, a.correct, a.count) == (10.0, 3.0, 4)
    assert (b.loss_sum, b.correct, b.count) == (11.0, 0.0, 2)
    assert stats_of(losses, correct) == Stats(21.0, 3.0, 6)
    losses[1] = float("nan")
    a, b = segment_stats(losses, correct, (4, 2))
    assert a.loss != a.loss and b.loss_sum == 11.0  # NaN stays in the first split
    # K rows (grid points at once): per split, a list of K Stats.
    rows = segment_stats(
        torch.stack([losses, losses * 2]), torch.stack([correct, ~correct]), (4, 2)
    )
    assert [s.loss_sum for s in rows[1]] == [11.0, 22.0]
    assert [s.correct for s in rows[1]] == [0.0, 2.0]


def test_small_losses_are_as_precise_as_torch_cross_entropy():
    """Near a minimum the losses are tiny; a float32 log-sum-exp less the true logit would
    lose them to cancellation (about 1e-6 absolute on logits near 12)."""
    from engine.evaluate import sample_stats

    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 10, (2000,), generator=g)
    logits = torch.randn(2000, 10, generator=g)
    logits[torch.arange(2000), y] += 12.0  # confident and right: losses near 1e-4
    exact = F.cross_entropy(logits.double(), y, reduction="none")
    torch_error = (F.cross_entropy(logits, y, reduction="none").double() - exact).abs().max()
    per, correct = sample_stats(logits, y)
    assert (per.double() - exact).abs().max() <= torch_error * 1.01
    # log1p of the non-max terms: far below float32's spacing at 1, on any CPU's exp kernel
    assert (per.double() - exact).abs().max() <= 1e-9
    assert per.double().mean().item() == pytest.approx(exact.mean().item(), rel=1e-4)
    assert correct.all()


@pytest.mark.parametrize("b, c", [(300, 10), (1, 10), (50, 1), (40, 2), (70, 1000)])
def test_k_points_at_once_give_each_points_own_numbers_bit_for_bit(b, c):
    """K points' logits at once give each point the numbers of its logits alone, to the bit
    (a pool, ranks or another K must not change a surface): ties (the first maximal class),
    NaN, infinities, rows all -inf or all equal, tiny losses. The logits are left as given."""
    from engine.evaluate import sample_stats

    g = torch.Generator().manual_seed(2)
    logits = torch.randn(4, b, c, generator=g) * 4
    y = torch.randint(0, c, (b,), generator=g)
    if b >= 40:
        logits[0, :10] = 0.5  # all equal
        logits[1, 0:10, 0] = float("nan")
        logits[1, 10:15, -1] = float("inf")
        logits[1, 15:20] = float("-inf")
        logits[2, 20:30, 0] = float("-inf")
        logits[2, 30:40, : min(c, 3)] = 7.0  # ties at the top of the first few classes
        logits[3, torch.arange(b), y] += 40.0  # confident and right: losses near 1e-17
    given = logits.clone()
    per, correct = sample_stats(logits, y)
    torch.testing.assert_close(logits, given, rtol=0, atol=0, equal_nan=True)
    for k in range(4):
        for lo, hi in ((0, b), (0, b // 2), (b // 2, b)):  # alone, and in other batches
            one, ok = sample_stats(logits[k, lo:hi], y[lo:hi])
            torch.testing.assert_close(per[k, lo:hi], one, rtol=0, atol=0, equal_nan=True)
            assert torch.equal(correct[k, lo:hi], ok)
    # Against float64 torch on the finite rows, and argmax; tiny losses kept to 1e-16.
    for k in range(4):
        fin = logits[k].isfinite().all(-1)
        exact = F.cross_entropy(logits[k][fin].double(), y[fin], reduction="none")
        assert (per[k][fin].double() - exact).abs().max() <= 1e-6 * max(1.0, exact.max())
        assert torch.equal(correct[k][fin], logits[k][fin].argmax(-1) == y[fin])
    if b >= 40:
        exact = F.cross_entropy(logits[3].double(), y, reduction="none")
        assert (per[3].double() - exact).abs().max() <= 1e-12
        # A NaN logit: NaN. A max at +inf: +inf, or NaN where the true class is at +inf
        # (inf - inf). All -inf: NaN. None of them correct.
        assert per[1, 0:10].isnan().all() and per[1, 15:20].isnan().all()
        at_inf = y[10:15] == c - 1
        assert per[1, 10:15][~at_inf].eq(math.inf).all() and per[1, 10:15][at_inf].isnan().all()
        assert not correct[1, :20].any()
        assert correct[0, :10].equal(y[:10] == 0)  # all equal: the first class is predicted


def test_k_points_take_half_precision_logits():
    from engine.evaluate import sample_stats

    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(2, 64, 10, generator=g) * 3).to(torch.bfloat16)
    y = torch.randint(0, 10, (64,), generator=g)
    per, correct = sample_stats(logits, y)
    assert per.dtype == torch.float32
    for k in range(2):
        one, ok = sample_stats(logits[k], y)
        torch.testing.assert_close(per[k], one, rtol=1e-6, atol=1e-6)
        assert torch.equal(correct[k], ok)


def test_any_float_dtype_and_layout_give_the_float32_numbers_to_the_bit():
    """float64, float16 and bfloat16 logits are taken in float32; slices with a step and
    transposed views are the contiguous copy's numbers; K = 1 and several lead dims are each
    point's own; C = 1 is a loss of 0, always right. Against torch and argmax as well."""
    from engine.evaluate import sample_stats

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 40, 10, generator=g) * 3
    y = torch.randint(0, 10, (40,), generator=g)
    want, ok = sample_stats(logits[0, 0], y)
    torch.testing.assert_close(want, F.cross_entropy(logits[0, 0], y, reduction="none"))
    assert torch.equal(ok, logits[0, 0].argmax(-1) == y)
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        z = logits[0, 0].to(dtype)
        assert all(map(torch.equal, sample_stats(z, y), sample_stats(z.float(), y)))
    wide = torch.randn(80, 10, generator=g)
    wide[::2] = logits[0, 0]
    cols = torch.randn(40, 20, generator=g)
    cols[:, 1::2] = logits[0, 0]
    for view in (wide[::2], logits[0, 0].t().contiguous().t(), cols[:, 1::2]):
        assert not view.is_contiguous()
        got, got_ok = sample_stats(view, y)
        assert torch.equal(got, want) and torch.equal(got_ok, ok)
    per, correct = sample_stats(logits, y)  # (2, 3) points at once, and K = 1
    assert per.shape == (2, 3, 40) and torch.equal(per[0, 0], want)
    assert torch.equal(sample_stats(logits[:1, 0], y)[0][0], want)
    one = torch.randn(5, 40, 1, generator=g)
    per, correct = sample_stats(one, torch.zeros(40, dtype=torch.long))
    assert per.eq(0).all() and correct.all()
