"""Activations side by side (seeds 000, 002, 004): step, sigmoid, tanh, ReLU, leaky ReLU, ELU and
Maxout on the same playground set.

(a) The gradient of every layer's weights at initialisation in a deep MLP: sigmoid's shrinks by
    orders of magnitude towards the input (sigma' <= 1/4), whatever the initialiser; the step
    function passes no gradient at all.
(b) Training curves of a 6-hidden-layer MLP (SGD with momentum): ReLU and its relatives
    converge, sigmoid does not move, tanh is slower.
(c) Dead ReLU units: after training with a large learning rate many ReLU units output 0 on
    every training input; they receive exactly zero gradient (so they never update), while the
    inactive units of a leaky ReLU still receive some.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from experiments._choice import Choice, choose
from experiments._helpers import finite_or_none, stack, stack_init
from experiments._training import trainer
from fnn.app.claims import check, claim, describe_checks, verdict
from fnn import initializers, plot
from fnn.data import fit_standardize, playground

DESCRIPTION = "step/sigmoid/tanh/ReLU/leaky/ELU/Maxout: vanishing gradients, curves, dead ReLUs"

CONFIG = {
    "activations": ["step", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout"],
    "dataset": "spiral", "n": 512, "noise": 0.05, "data_seed": 0, "maxout_pieces": 2,
    # (a) gradients at init
    "grad_depth": 15, "grad_width": 64, "grad_seeds": 5,
    # (b) training curves
    "train_depth": 6, "train_width": 32, "epochs": 150, "batch_size": 32,
    "learning_rate": 0.03, "momentum": 0.9, "seeds": 3, "loss_threshold": 0.3,
    # (c) dead units: ReLU and leaky ReLU also trained at a large learning rate
    "large_learning_rate": 0.1,
}
QUICK = {"activations": ["step", "sigmoid", "tanh", "relu", "leaky_relu"], "grad_depth": 8,
         "grad_seeds": 2, "epochs": 15, "seeds": 2, "n": 256}

# The initialiser each activation is normally paired with (Glorot & Bengio 2010 for
# sigmoid/tanh, He et al. 2015 for the ReLU family; fan-in (LeCun) for maxout).
INIT = {"step": "xavier", "sigmoid": "xavier", "tanh": "xavier", "relu": "he",
        "leaky_relu": "he", "elu": "he", "maxout": "lecun"}
INITS = {"lecun": initializers.lecun_normal(), "xavier": initializers.glorot_normal(),
         "he": initializers.he_normal()}
# Maxout's kernel is (n_in, units, pieces); its fan-in is n_in (jax's default fan
# computation for a 3-d kernel would multiply n_in by units).
MAXOUT_INIT = jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=0,
                                                   out_axis=1, batch_axis=2)

CLAIMS = {
    "vanishing": claim(
        "sigmoid 函数的两头过于平坦，导致如果 x 大于 5 时候，对 sigmoid 函数求导的话基本是0，这样在应用"
        "链式法则进行求导的时候，导数非常容易是0，会导致梯度消失。",
        "The sigmoid is too flat at both ends: for x > 5 its derivative is essentially 0, so when "
        "the chain rule multiplies derivatives the result very easily becomes 0 - the gradient "
        "vanishes.", "seed 002, 神经元的激活函数 / sigmoid 函数 (also seed 000: Sigmoid ... 梯度消失)"),
    "faster": claim(
        "ReLU ... 收敛速度比 sigmoid / tanh 函数快，这个是在实践中证明了的。",
        "ReLU converges faster than sigmoid / tanh; this has been shown in practice.",
        "seed 002, ReLU 和 Leaky ReLU"),
    "dead": claim(
        "如果你的输入不巧全部在ReLU的左侧，即 Dead Area，那么这个神经元就挂掉了，再也没法激活，在后向传播时，"
        "相应的神经元的参数都不会更新。… Leaky ReLU：在小于0的时候，斜率为很小的一个比如0.1，这样在反向传播的"
        "时候也能少许的改变一下权重。",
        "If a unit's inputs all happen to fall on ReLU's left side (the dead area) the neuron "
        "dies and never activates again: in backpropagation its parameters are not updated. "
        "Leaky ReLU gives the negative side a small slope so backpropagation can still change "
        "the weights a little.", "seed 002, ReLU 和 Leaky ReLU; seed 004, ReLU 缺点 / LeakyReLU"),
}


HIDDEN = {"step": fnn.step, "sigmoid": fnn.sigmoid, "tanh": fnn.tanh, "relu": fnn.relu,
          "leaky_relu": fnn.leaky_relu, "elu": fnn.elu}


def network(name: str, depth: int, width: int, init: str | None = None, pieces: int = 2):
    """``depth`` hidden layers of ``width`` units with activation ``name`` and a 2-way output.

    Maxout layers carry their own affine pieces: Maxout(width, pieces) replaces Dense + f.
    """
    if name == "maxout":
        hidden = [fnn.Maxout(width, pieces, w_init=MAXOUT_INIT) for _ in range(depth)]
        return fnn.serial(*hidden, fnn.Dense(2))
    w_init = INITS[init or INIT[name]]
    layers = []
    for _ in range(depth):
        layers += [fnn.Dense(width, w_init=w_init), HIDDEN[name]]
    return fnn.serial(*layers, fnn.Dense(2, w_init=w_init))


def switch_network(depth: int, width: int, init: str):
    """The same network for every activation of HIDDEN, picked by the state's index (see
    ``_choice.Choice``), so all of them share one compiled program."""
    layers = []
    for _ in range(depth):
        layers += [fnn.Dense(width, w_init=INITS[init]), Choice(HIDDEN)]
    return fnn.serial(*layers, fnn.Dense(2, w_init=INITS[init]))


def init_switch(depth, width, input_shape, keys, act_index, init_index):
    """Stacked (params, state) of ``switch_network``: row i drawn from keys[i] with initialiser
    ``list(INITS)[init_index[i]]`` and activation ``list(HIDDEN)[act_index[i]]``. Rows that
    share a key and an initialiser share their (eagerly drawn) params."""
    nets = [switch_network(depth, width, init) for init in INITS]
    drawn, rows = {}, []
    for key, a, k in zip(keys, act_index, init_index):
        cache = (int(k), str(jax.random.key_data(key).tolist()))
        if cache not in drawn:
            drawn[cache] = nets[int(k)].init(key, input_shape)
        params, state = drawn[cache]
        rows.append((params, choose(state, int(a))))
    return stack(rows)


def _grad_rms(net, params, state, x, y):
    """RMS of dL/dW of every weight matrix, input side first: (layers,)."""
    loss = lambda p: fnn.losses.softmax_cross_entropy(net.apply(p, state, x)[0], y)
    grads = jax.grad(loss)(params)
    names = sorted(grads, key=lambda k: int(k.rsplit("_", 1)[1]))  # dense_0, dense_1, ...
    return jnp.stack([jnp.sqrt(jnp.mean(grads[k]["w"] ** 2)) for k in names])


def _data(config):
    x, y = playground(config["dataset"], n=config["n"], noise=config["noise"],
                      seed=config["data_seed"])
    return fit_standardize(x)(x), y


def gradients_at_init(config, x, y) -> dict:
    """(a) Per-layer RMS gradient at init, mean over ``grad_seeds`` draws: every activation
    with its usual initialiser, and sigmoid with each of LeCun, Xavier and He."""
    depth, width, seeds = config["grad_depth"], config["grad_width"], config["grad_seeds"]
    names = [n for n in config["activations"] if n in HIDDEN]
    rows = [(n, INIT[n]) for n in names] + [("sigmoid", init) for init in INITS]
    act_index = np.repeat([list(HIDDEN).index(n) for n, _ in rows], seeds)
    init_index = np.repeat([list(INITS).index(i) for _, i in rows], seeds)
    keys = jax.random.split(jax.random.key(0), seeds)
    keys = jnp.concatenate([keys] * len(rows))
    net = switch_network(depth, width, "lecun")  # apply does not depend on the initialiser

    params, state = init_switch(depth, width, x.shape[1:], keys, act_index, init_index)
    g = jax.jit(jax.vmap(lambda p, s: _grad_rms(net, p, s, x, y)))(params, state)
    g = np.asarray(g, np.float64).reshape(len(rows), seeds, -1)
    g = g.mean(axis=1)
    per_layer = {n: g[i] for i, n in enumerate(names)}
    if "maxout" in config["activations"]:  # its own structure: computed on its own (eagerly)
        m = network("maxout", depth, width, pieces=config["maxout_pieces"])

        def maxout_rms(key):
            params, _ = m.init(key, x.shape[1:])
            grads = jax.grad(lambda p: fnn.losses.softmax_cross_entropy(m(p, x), y))(params)
            return jnp.stack([jnp.sqrt(jnp.mean(grads[k]["w"] ** 2)) for k in params])

        per_layer["maxout"] = np.asarray(jax.vmap(maxout_rms)(keys[:seeds]), np.float64).mean(0)
    per_layer = {n: per_layer[n] for n in config["activations"]}
    return {"per_layer": per_layer,
            "sigmoid_by_init": {init: g[len(names) + i] for i, init in enumerate(INITS)}}


def training(config, x, y) -> dict:
    """(b) and (c) in one compiled, vmapped run: every activation of HIDDEN at the normal
    learning rate (the curves) and ReLU / leaky ReLU also at a large one (dead units)."""
    depth, width, seeds = config["train_depth"], config["train_width"], config["seeds"]
    names = [n for n in config["activations"] if n in HIDDEN]
    runs = [(n, config["learning_rate"]) for n in names]
    runs += [(n, config["learning_rate"]) for n in ("relu", "leaky_relu") if n not in names]
    runs += [(n, config["large_learning_rate"]) for n in ("relu", "leaky_relu")]
    act_index = np.repeat([list(HIDDEN).index(n) for n, _ in runs], seeds)
    init_index = np.repeat([list(INITS).index(INIT[n]) for n, _ in runs], seeds)
    lrs = np.repeat(np.asarray([lr for _, lr in runs], np.float32), seeds)
    keys = jnp.concatenate([jax.random.split(jax.random.key(1), seeds)] * len(runs))
    params, state = init_switch(depth, width, x.shape[1:], keys, act_index, init_index)
    net = switch_network(depth, width, "lecun")
    objective = fnn.supervised(net)
    train = trainer(objective, lambda lr: fnn.optim.sgd(lr, momentum=config["momentum"]),
                    n=len(x), batch_size=config["batch_size"], epochs=config["epochs"])
    train_keys = jnp.concatenate([jax.random.split(jax.random.key(2), seeds)] * len(runs))

    def analyse(p, st, x, y):
        """Training accuracy, per-layer 'inactive on every input' masks and the gradient."""
        logits = net.apply(p, st, x)[0]
        h, masks = x, []
        for i in range(depth):
            z = h @ p[f"dense_{i}"]["w"] + p[f"dense_{i}"]["b"][None]
            masks.append(jnp.all(z <= 0, axis=0))
            h = net.children[2 * i + 1][1].apply_fn({}, st[f"choice_{i}"], z, None, False)[0]
        grads = jax.grad(lambda q: objective(q, st, (x, y), None, False)[0])(p)
        accuracy = jnp.mean((jnp.argmax(logits, axis=1) == y).astype(jnp.float32))
        return accuracy, jnp.stack(masks), grads

    @jax.jit
    def train_and_analyse(params, state, lrs, keys, x, y):  # one compiled program for all
        params, state, losses = jax.vmap(train, in_axes=(0, 0, None, 0, 0))(
            params, state, (x, y), lrs, keys)
        return losses, jax.vmap(analyse, in_axes=(0, 0, None, None))(params, state, x, y)

    losses, (accuracy, inactive, grads) = jax.device_get(
        train_and_analyse(params, state, jnp.asarray(lrs), train_keys, x, y))
    per_epoch = np.asarray(losses, np.float64).mean(axis=-1).reshape(len(runs), seeds, -1)

    accuracy = accuracy.reshape(len(runs), seeds)
    inactive = inactive.reshape(len(runs), seeds, depth, width)
    curves, final = {}, {}
    for r, (name, _) in enumerate(runs[:len(names)]):
        curves[name] = per_epoch[r].mean(axis=0)
        final[name] = {"loss": float(curves[name][-1]),
                       "train_accuracy": float(accuracy[r].mean())}
    if "maxout" in config["activations"]:
        m = network("maxout", depth, width, pieces=config["maxout_pieces"])
        mp, ms = stack_init(m, keys[:seeds], x.shape[1:])
        mtrain = trainer(fnn.supervised(m),
                         lambda lr: fnn.optim.sgd(lr, momentum=config["momentum"]),
                         n=len(x), batch_size=config["batch_size"], epochs=config["epochs"])
        mp, _, ml = jax.jit(jax.vmap(mtrain, in_axes=(0, 0, None, None, 0)))(
            mp, ms, (x, y), config["learning_rate"], train_keys[:seeds])
        curves["maxout"] = np.asarray(ml, np.float64).mean(axis=-1).mean(axis=0)
        accs = [float(np.mean(np.asarray(m(jax.tree.map(lambda a: a[s], mp), x)).argmax(1) == y))
                for s in range(seeds)]
        final["maxout"] = {"loss": float(curves["maxout"][-1]),
                           "train_accuracy": float(np.mean(accs))}

    dead = {}
    for r, (name, lr) in enumerate(runs):
        if name not in ("relu", "leaky_relu"):
            continue
        label = "large_lr" if r >= len(runs) - 2 else "small_lr"
        per_layer, grad_max, diverged = [], [], 0
        for s in range(seeds):
            i = r * seeds + s
            if not np.all(np.isfinite(per_epoch[r, s])):
                diverged += 1
                continue
            masks = inactive[r, s]
            per_layer.append(masks.mean(axis=1))
            if masks.any():
                grad_max.append(float(max(
                    max(np.abs(grads[f"dense_{l}"]["w"][i][:, masks[l]]).max(initial=0.0),
                        np.abs(grads[f"dense_{l}"]["b"][i][masks[l]]).max(initial=0.0))
                    for l in range(depth))))
        layers = np.mean(per_layer, axis=0) if per_layer else np.full(depth, np.nan)
        dead.setdefault(name, {})[label] = {
            "learning_rate": float(lr),
            "dead_fraction": float(np.mean(layers)),
            "dead_fraction_per_layer": layers,
            "max_abs_grad_into_dead_units": max(grad_max) if grad_max else None,
            "seeds_with_dead_units": len(grad_max),
            "diverged_seeds": diverged,
            "final_loss": finite_or_none(per_epoch[r, :, -1]),
        }
    return {"curves": curves, "final": final, "dead": dead}


def _epochs_to(curve, threshold) -> int | None:
    below = np.flatnonzero(np.nan_to_num(np.asarray(curve, np.float64), nan=np.inf) <= threshold)
    return int(below[0]) + 1 if below.size else None


def run(config):
    x, y = _data(config)
    grads = gradients_at_init(config, x, y)
    training_ = training(config, x, y)
    dead = training_["dead"]

    ratio = {name: float(g[0] / g[-1]) for name, g in grads["per_layer"].items()}
    sigmoid_ratio = {init: float(g[0] / g[-1]) for init, g in grads["sigmoid_by_init"].items()}
    threshold = config["loss_threshold"]
    to_threshold = {name: _epochs_to(c, threshold) for name, c in training_["curves"].items()}
    never = config["epochs"] + 1
    reach = lambda name: to_threshold.get(name) or never
    relu, leaky = dead["relu"], dead["leaky_relu"]
    leaky_grad = leaky["large_lr"]["max_abs_grad_into_dead_units"]
    checks = [
        check("(a) sigmoid: RMS dL/dW of layer 1 / of the output layer at init, worst of "
              "LeCun/Xavier/He init", max(sigmoid_ratio.values()), "<", 1e-4),
        check("(a) ReLU (He init): same ratio", ratio.get("relu"), ">", 1e-2),
        check(f"(b) epochs for ReLU to reach loss {threshold} (never = {never})", reach("relu"),
              "<", min(reach("sigmoid"), reach("tanh"))),
        check("(c) ReLU dead-unit fraction after training at the large rate / at the small rate",
              relu["large_lr"]["dead_fraction"] / max(relu["small_lr"]["dead_fraction"], 1e-3),
              ">=", 3.0),
        check("(c) ReLU: largest |gradient| reaching a dead unit's weights",
              relu["large_lr"]["max_abs_grad_into_dead_units"], "==", 0.0),
        check("(c) leaky ReLU: largest |gradient| reaching an inactive unit's weights",
              leaky_grad if leaky_grad is not None else 0.0, ">", 0.0),
    ]
    result = {
        "claim": CLAIMS["vanishing"],
        "claims": CLAIMS,
        **verdict(checks),
        "gradient_rms_per_layer": grads["per_layer"],
        "sigmoid_gradient_rms_by_init": grads["sigmoid_by_init"],
        "first_over_last_layer_gradient": ratio,
        "sigmoid_first_over_last_by_init": sigmoid_ratio,
        "step_hidden_gradients_all_zero": bool(np.all(grads["per_layer"].get(
            "step", np.ones(2))[:-1] == 0)),
        "init_used": {name: INIT[name] for name in config["activations"]},
        "training_loss_per_epoch": training_["curves"],
        "final": training_["final"],
        "epochs_to_loss_threshold": to_threshold,
        "dead_units": dead,
    }
    result["summary"] = (
        f"at init, layer-1/output gradient ratio: sigmoid {ratio.get('sigmoid', np.nan):.1e}, "
        f"tanh {ratio.get('tanh', np.nan):.1e}, ReLU {ratio.get('relu', np.nan):.1e}; final loss "
        + ", ".join(f"{k} {v['loss']:.2f}" for k, v in training_["final"].items())
        + f"; dead ReLU units {100 * relu['small_lr']['dead_fraction']:.0f}% -> "
        f"{100 * relu['large_lr']['dead_fraction']:.0f}% at lr {config['large_learning_rate']} "
        f"(leaky {100 * leaky['large_lr']['dead_fraction']:.0f}%, still receiving gradient)")
    result["checks_text"] = describe_checks(checks)
    return result


def figures(results, out_dir):
    paths = []
    # (a) gradients per layer
    fig, (ax, ax_init) = plot.figure(2, size=(5.6, 4.2))
    styles = {"relu": {"ls": "-", "lw": 3.0, "alpha": 0.5}, "leaky_relu": {"ls": "--"},
              "elu": {"ls": "-."}, "maxout": {"ls": ":"}}
    for i, (name, g) in enumerate(results["gradient_rms_per_layer"].items()):
        g = np.asarray(g, np.float64)
        if name == "step":  # exactly 0 below the output layer: nothing to draw on a log axis
            ax.text(0.02, 0.02, f"step: dL/dW = 0 exactly in layers 1..{len(g) - 1} "
                    f"(output layer {g[-1]:.1g})", transform=ax.transAxes, fontsize=8)
            continue
        ax.plot(np.arange(1, len(g) + 1), g, marker="o", ms=3, color=plot.COLORS[i % 8],
                label=name, **styles.get(name, {"ls": "-"}))
    plot.decorate(ax, xlabel="layer (1 = input side)", ylabel="RMS of dL/dW at init",
                  title="(a) gradient per layer at initialisation", logy=True, legend_size=7)
    for i, (init, g) in enumerate(results["sigmoid_gradient_rms_by_init"].items()):
        ax_init.plot(np.arange(1, len(g) + 1), g, "o-", ms=3, color=plot.COLORS[i],
                     label=f"sigmoid, {init} init")
    if "relu" in results["gradient_rms_per_layer"]:
        g = results["gradient_rms_per_layer"]["relu"]
        ax_init.plot(np.arange(1, len(g) + 1), g, "k--", label="ReLU, He init")
    plot.decorate(ax_init, xlabel="layer (1 = input side)",
                  title="sigmoid vanishes under every initialiser", logy=True, legend_size=8)
    paths.append(plot.save(fig, f"{out_dir}/gradients_at_init.png"))

    # (b) training curves
    fig, ax = plot.figure(1, size=(6.4, 4.2))
    plot.loss_curves(ax, {k: np.asarray(v, np.float64) for k, v in
                          results["training_loss_per_epoch"].items()},
                     xlabel="epoch", ylabel="training loss (mean over seeds)",
                     title="(b) same net, same SGD: training curves")
    paths.append(plot.save(fig, f"{out_dir}/training_curves.png"))

    # (c) dead units
    fig, ax = plot.figure(1, size=(6.4, 4.0))
    dead = results["dead_units"]
    bars = [(name, cond) for name in ("relu", "leaky_relu") for cond in ("small_lr", "large_lr")]
    width = 0.8 / len(bars)
    for k, (name, cond) in enumerate(bars):
        layers = np.asarray([np.nan if v is None else v
                             for v in dead[name][cond]["dead_fraction_per_layer"]], float)
        ax.bar(np.arange(1, len(layers) + 1) + (k - (len(bars) - 1) / 2) * width, 100 * layers,
               width, color=plot.COLORS[k],
               label=f"{name}, lr {dead[name][cond]['learning_rate']} "
                     f"(mean {100 * dead[name][cond]['dead_fraction']:.0f}%)")
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("% units inactive on every training input")
    g = dead["relu"]["large_lr"]["max_abs_grad_into_dead_units"]
    gl = dead["leaky_relu"]["large_lr"]["max_abs_grad_into_dead_units"]
    fmt = lambda v: "n/a" if v is None else f"{v:.1g}"
    ax.set_title(f"(c) dead units; largest |gradient| reaching them: ReLU {fmt(g)}, "
                 f"leaky {fmt(gl)}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(frameon=False, fontsize=8)
    paths.append(plot.save(fig, f"{out_dir}/dead_units.png"))
    return paths
