import pytest
import torch
import torch.nn.functional as F

from engine.data import Split, digits_splits
from engine.evaluate import Stats, evaluate
from engine.models import build_model


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
