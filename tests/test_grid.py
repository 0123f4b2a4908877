import numpy as np
import pytest

from engine.errors import ConfigError
from engine.grid import Grid, parse_axis


def test_parse_axis():
    a = parse_axis("-1:1:5")
    assert (a.lo, a.hi, a.num) == (-1.0, 1.0, 5)
    np.testing.assert_allclose(a.coordinates(), np.linspace(-1, 1, 5))


@pytest.mark.parametrize(
    "spec", ["-1:1:0", "-1:1:1", "a:b:c", "1:2", "1:1:5", "0:1:2.5", "nan:1:3"]
)
def test_bad_axis(spec):
    with pytest.raises(ConfigError, match="min:max:num"):
        parse_axis(spec)


def test_orientation_is_meshgrid_order():
    g = Grid.parse("0:4:5", "10:12:3")  # nx=5, ny=3
    assert g.shape == (3, 5)
    xx, yy = np.meshgrid(g.x.coordinates(), g.y.coordinates())
    for k in range(g.size):
        i, j = np.unravel_index(k, g.shape)
        assert g.point(k) == (xx[i, j], yy[i, j]) == (g.x.coordinates()[j], g.y.coordinates()[i])
    np.testing.assert_array_equal(g.points()[:, 0], xx.ravel())


def test_center_index():
    g = Grid.parse("-1:1:5", "-1:1:3")
    assert g.point(g.center_index()) == (0.0, 0.0)
    assert Grid.parse("-0.5:1.5:5").point(Grid.parse("-0.5:1.5:5").center_index()) == (0.0, 0.0)
