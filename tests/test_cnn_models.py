"""LeNet-5, the small CNN, ResNet and its plain twin: shapes, depth, state, shortcuts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from experiments.resnet_vs_plain import conv_paths

KEY = jax.random.key(0)


def test_lenet5_feature_maps_follow_the_paper_on_28x28():
    net = fnn.models.LeNet5()
    rows = str(fnn.summary(net, (28, 28, 1)))
    for shape in ("(28, 28, 6)", "(14, 14, 6)", "(10, 10, 16)", "(5, 5, 16)", "(400,)", "(120,)", "(84,)"):
        assert shape in rows
    assert net.output_shape((28, 28, 1)) == (10,)
    digits_net = fnn.models.LeNet5(second_padding="SAME")
    # shapes only: jax.eval_shape traces init and apply without compiling them
    params, _ = jax.eval_shape(lambda k: digits_net.init(k, (8, 8, 1)), KEY)
    assert jax.eval_shape(digits_net, params, jnp.zeros((3, 8, 8, 1))).shape == (3, 10)


def test_simple_cnn_groups_divide_the_second_convolution():
    plain, grouped = fnn.models.SimpleCNN((8, 16)), fnn.models.SimpleCNN((8, 16), groups=4)
    p1, _ = jax.eval_shape(lambda k: plain.init(k, (8, 8, 1)), KEY)
    p4, _ = jax.eval_shape(lambda k: grouped.init(k, (8, 8, 1)), KEY)
    assert p1["conv_1"]["w"].shape == (3, 3, 8, 16) and p4["conv_1"]["w"].shape == (3, 3, 2, 16)
    assert p1["conv_0"]["w"].shape == p4["conv_0"]["w"].shape == (3, 3, 1, 8)


@pytest.mark.parametrize("make, shortcut", [(fnn.models.ResNet, True), (fnn.models.PlainNet, False)])
def test_resnet_and_plain_have_the_same_depth_and_differ_only_in_shortcuts(make, shortcut):
    assert len(list(conv_paths(make()))) + 1 == 20         # 19 convolutions + the classifier
    net = make((1, 1), (4, 8))                               # small, to apply it quickly
    params, state = net.init(KEY, (8, 8, 1))
    assert net.stateful and state                          # BatchNorm running statistics
    has_projection = any("projection" in jax.tree_util.keystr(p)
                         for p, _ in jax.tree_util.tree_flatten_with_path(params)[0])
    assert has_projection == shortcut
    x = jax.random.normal(KEY, (4, 8, 8, 1))
    logits, new_state = net.apply(params, state, x, train=True)
    assert logits.shape == (4, 10)
    changed = jax.tree.map(lambda a, b: not np.allclose(a, b), state, new_state)
    assert any(jax.tree.leaves(changed))                   # training updates the statistics
    eval_logits, same_state = net.apply(params, state, x, train=False)
    jax.tree.map(np.testing.assert_array_equal, same_state, state)
    assert not np.allclose(eval_logits, logits)            # eval uses running, not batch, stats


def test_resnet_identity_block_adds_its_input():
    block = fnn.models.basic_block(4)
    params, state = block.init(KEY, (6, 6, 4))
    x = jax.random.normal(KEY, (2, 6, 6, 4))
    y, _ = block.apply(params, state, x)
    body = block.children[0][1].children[0][1]             # residual -> its block
    fx, _ = body.apply(params["residual_0"]["block"], state["residual_0"]["block"], x)
    np.testing.assert_allclose(y, jax.nn.relu(fx + x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="stage_sizes .* and widths .* must have the same length"):
        fnn.models.ResNet((1, 1), (4, 8, 16))
