"""Course diagrams (diagrams/nbNN.py) checked against the objects they depict. Other notebooks add their tests here."""

from pathlib import Path

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle  # noqa: E402

from diagrams import DiagramError, nb01  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def notebook_engine(path=ROOT / "solutions" / "01_tensors_autograd.ipynb"):
    """Notebook 01's own Value engine (class, tanh, backward), executed from the notebook's cells."""
    namespace = {}
    exec("import math", namespace)
    starts = ("class Value", "def tanh(self)", "def backward(self)")
    cells = [
        c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code" and c.source.startswith(starts)
    ]
    assert len(cells) == 3, "notebook 01 no longer defines Value, tanh and backward in cells of their own"
    for cell in cells:
        exec(cell.source, namespace)
    return namespace["Value"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def Value():
    return notebook_engine()


def neuron(Value):
    x1, x2, w1, w2, b = Value(1.5), Value(-0.5), Value(0.8), Value(-1.2), Value(0.1)
    out = (x1 * w1 + x2 * w2 + b).tanh()
    return out, dict(x1=x1, x2=x2, w1=w1, w2=w2, b=b, out=out)


def test_value_graph_holds_exactly_the_nodes_backward_visits(Value):
    out, names = neuron(Value)
    order = out.backward()  # the notebook's backward returns its topological order
    graph = nb01.value_graph(out)
    assert {id(n) for n in graph.nodes} == {id(n) for n in order}
    assert len(graph.nodes) == 10
    assert {(id(p), id(c)) for p, c in graph.edges} == {(id(p), id(c)) for c in order for p in c._parents}
    position = {id(n): k for k, n in enumerate(graph.nodes)}
    assert all(position[id(p)] < position[id(c)] for p, c in graph.edges), "not in topological order"
    assert graph.level[id(out)] == 4 and all(graph.level[id(v)] == 0 for k, v in names.items() if k != "out")


def test_value_graph_picture_has_one_box_per_value_and_one_circle_per_operation(Value):
    out, names = neuron(Value)
    out.backward()
    fig, graph = nb01.draw_value_graph(out, names=names)
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    circles = [p for p in ax.patches if isinstance(p, Circle)]
    assert len(boxes) == len(graph.nodes) == 10
    assert len(circles) == sum(1 for n in graph.nodes if n._op) == 5
    texts = [t.get_text() for t in ax.texts]
    for node in graph.nodes:  # each box shows its node's data and grad
        assert any(f"data {node.data:+.4f}\ngrad {node.grad:+.4f}" in t for t in texts)
    assert sorted(t for t in texts if t in ("+", "*", "tanh")) == sorted(n._op for n in graph.nodes if n._op)
    assert sum(1 for t in texts if t.startswith("x1\n")) == 1
    assert len([t for t in texts if t]) == 10 + 5 and fig.dpi >= 100  # arrows are empty annotations


def test_value_graph_follows_a_changed_expression(Value):
    a = Value(3.0)
    expr = a * a + a  # a used three times: edges are distinct pairs
    graph = nb01.value_graph(expr)
    assert len(graph.nodes) == 3 and len(graph.edges) == 3
    bigger = nb01.value_graph((expr * 2.0).tanh())
    assert len(bigger.nodes) == 6 and max(bigger.level.values()) == 4


def test_value_graph_refuses_objects_without_parents():
    with pytest.raises(DiagramError, match="_parents"):
        nb01.value_graph(object())


@pytest.mark.parametrize(
    "a, b",
    [
        (torch.tensor([[0], [10], [20]]), torch.tensor([[0, 1, 2, 3]])),
        (torch.tensor([[1, 2, 3], [4, 5, 6]]), torch.tensor([100, 200, 300])),
        (torch.tensor(5), torch.arange(4)),
    ],
)
def test_broadcasting_picture_matches_torch(a, b):
    fig, rows = nb01.draw_broadcasting([(a, b)])
    out = torch.broadcast_shapes(a.shape, b.shape)
    cells = 1
    for size in out:
        cells *= size
    panel_a, panel_b, panel_sum = rows[0]
    assert panel_a.shape == tuple(a.shape) and panel_b.shape == tuple(b.shape) and panel_sum.shape == tuple(out)
    assert panel_a.stored_cells == a.numel() and panel_b.stored_cells == b.numel() and panel_sum.stored_cells == cells
    for ax in fig.axes[:3]:
        assert sum(isinstance(p, Rectangle) for p in ax.patches) == cells
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert texts == [f"{v:g}" for v in (a + b).reshape(-1).tolist()]


def notebook_sp500(path=ROOT / "solutions" / "01_tensors_autograd.ipynb"):
    """Notebook 01's own x (decades since 2006) and y (log10 of the S&P 500), made by the notebook's cells."""
    namespace = {}
    exec("import csv, datetime, torch\nfrom matplotlib import cbook", namespace)
    cells = [
        c
        for c in nbformat.read(path, as_version=4).cells
        if c.cell_type == "code" and ('"Stocks.csv"' in c.source or "x = (year - 2006) / 10" in c.source)
    ]
    assert len(cells) == 2, "notebook 01 no longer reads Stocks.csv and makes x and y in two cells"
    for cell in cells:
        exec(cell.source, namespace)
    return namespace["x"], namespace["y"]


@pytest.fixture(scope="module")
def sp500():
    return notebook_sp500()


def test_gradient_descent_is_the_notebooks_loop_on_its_data(sp500):
    x, y = sp500
    run = nb01.gradient_descent(x, y, lr=0.1, steps=300)  # 01 §4.2's gd_lr and gd_steps
    assert len(run.path) == len(run.losses) == 301
    w, b = run.path[-1].tolist()
    assert abs(w - 0.2793) < 1e-3 and abs(b - 3.0734) < 1e-3  # what the notebook's raw-tensor loop prints
    assert abs(w - run.best[0]) < 1e-4 and abs(b - run.best[1]) < 1e-4 and run.regime == "converges"
    first = torch.zeros(2, requires_grad=True)  # one step by hand: autograd's gradient at (0, 0)
    ((first[0] * x + first[1] - y) ** 2).mean().backward()
    assert torch.allclose(run.path[1], -0.1 * first.grad, atol=1e-6)


def test_gradient_descent_regimes_follow_the_curvature_of_the_loss(sp500):
    x, y = sp500
    curvatures = nb01.line_mse_curvatures(x)
    hessian = torch.autograd.functional.hessian(
        lambda p: ((p[0] * x.double() + p[1] - y.double()) ** 2).mean(), torch.zeros(2, dtype=torch.float64)
    )
    assert torch.allclose(curvatures, torch.linalg.eigvalsh(hessian))
    critical = 2 / curvatures.max().item()
    crawl, good, below, above = (
        nb01.gradient_descent(x, y, lr, steps=30) for lr in (0.01, 0.3, 0.97 * critical, 1.03 * critical)
    )
    assert crawl.regime == "crawls" and good.regime == "converges" and above.regime == "diverges"
    assert below.regime != "diverges" and below.losses[-1] < below.losses[0]  # just below: it still shrinks
    assert above.losses[-1] > above.losses[0] and abs(above.critical_lr - critical) < 1e-9


def test_gradient_descent_picture_and_its_slider(sp500):
    x, y = sp500
    fig, runs = nb01.draw_gradient_descent(x, y, lrs=(0.01, 0.3, 1.05), steps=30)
    assert [r.regime for r in runs] == ["crawls", "converges", "diverges"] and len(fig.axes) == 6
    top = fig.axes[0]
    drawn = top.lines[0].get_xydata()  # the path is the run's (w, b), point by point
    assert drawn.shape == runs[0].path.shape and torch.allclose(torch.tensor(drawn).float(), runs[0].path)
    assert "crawls" in top.get_title() and "diverges above lr = 1.00" in fig._suptitle.get_text()
    explorer = nb01.GradientDescentExplorer(x, y, lr=0.1, steps=30)
    assert explorer.run.lr == pytest.approx(0.1) and explorer.run.regime == "converges"
    explorer.slider.value = 1.5  # moving the slider redraws for the new rate
    assert explorer.run.lr == pytest.approx(1.5) and explorer.run.regime == "diverges"
    with pytest.raises(DiagramError, match="1 to 4"):
        nb01.draw_gradient_descent(x, y, lrs=())


def test_uncentred_inputs_stretch_the_bowl_and_the_steep_axis_zig_zags(sp500):
    x, y = sp500
    inputs = {"uncentred": x + 1.6, "centred": x}  # decades since 1990, decades since 2006
    fig, (raw, centred) = nb01.draw_conditioning(inputs, y, lr=0.2, steps=30)
    assert len(fig.axes) == 4 and "zig-zags" in fig.axes[0].get_title() and "zig-zags" not in fig.axes[1].get_title()
    assert raw.condition_number > 15 and centred.condition_number < 1.2  # the offset alone stretches the bowl
    assert raw.critical_lr < 0.25 < 0.9 < centred.critical_lr
    assert raw.zigzags and not centred.zigzags
    from helpers.plot import PROJECTOR_DPI, small_texts

    fig.canvas.draw()  # legible on a projector, as tests/test_plot.py asks of every course figure
    assert fig.dpi >= PROJECTOR_DPI and not small_texts(fig)
    hessian = torch.autograd.functional.hessian(
        lambda p: ((p[0] * inputs["uncentred"].double() + p[1] - y.double()) ** 2).mean(), torch.zeros(2).double()
    )
    steep = torch.linalg.eigh(hessian).eigenvectors[:, 1].float()  # the axis of the largest curvature
    along = (raw.path - torch.tensor(raw.best).float()) @ steep
    assert (along[1:] * along[:-1] < 0).float().mean() > 0.9  # the side of the valley flips at (nearly) every step
    assert raw.losses[-1] - raw.best_loss > 100 * (centred.losses[-1] - centred.best_loss)  # still crawling
    with pytest.raises(DiagramError, match="1 to 4"):
        nb01.draw_conditioning({}, y, lr=0.2)


def test_explorer_switch_moves_between_inputs(sp500):
    x, y = sp500
    explorer = nb01.GradientDescentExplorer({"centred": x, "uncentred": x + 1.6}, y, lr=0.3, steps=30)
    assert explorer.run.regime == "converges" and len(explorer.widget.children) == 3  # slider, switch, picture
    explorer.switch.value = "uncentred"  # the same rate now lies above the uncentred bowl's critical rate
    assert explorer.run.regime == "diverges" and explorer.run.critical_lr < 0.3


def test_broadcasting_refuses_shapes_that_do_not_fit():
    with pytest.raises(DiagramError, match="do not broadcast"):
        nb01.draw_broadcasting([(torch.zeros(3), torch.zeros(4))])
    with pytest.raises(DiagramError, match="at most 2-D"):
        nb01.draw_broadcasting([(torch.zeros(2, 2, 2), torch.zeros(2))])


# ---- notebook 05: the all-reduce and DistributedSampler pictures -------------------------------------------


def test_all_reduce_picture_shows_each_rank_and_the_mean_on_every_rank():
    import diagrams.nb05 as nb05

    grads = [torch.randn(10, generator=torch.Generator().manual_seed(r)) for r in range(3)]
    fig, drawn = nb05.plot_all_reduce(grads, max_values=6)
    mean = torch.stack(grads).mean(0)[:6]
    assert drawn["before"].shape == drawn["after"].shape == (3, 6)
    assert torch.equal(drawn["before"], torch.stack([g[:6] for g in grads]))
    assert torch.allclose(drawn["after"], mean.expand(3, 6))
    ax = fig.axes[0]
    cells = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0.9]
    assert len(cells) == 2 * 3 * 6  # one square per value, before and after, for every rank
    texts = [t.get_text() for t in ax.texts]
    assert all(texts.count(f"{v:+.2f}") >= 3 for v in mean.tolist())  # the mean, on every rank
    assert fig.dpi >= 100 and fig.texts[0].get_text().startswith("all-reduce")


@pytest.mark.parametrize("n, world", [(11, 2), (10, 3), (8, 4)])
def test_sampler_picture_colours_each_read_by_its_rank(n, world):
    import math

    from matplotlib.colors import to_rgba
    from torch.utils.data import DistributedSampler

    import diagrams.nb05 as nb05

    samplers = [DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=True, seed=0) for r in range(world)]
    fig, orders = nb05.plot_sampler(samplers, epochs=(0, 1))
    assert all(s.epoch == 0 for s in samplers)  # the samplers are left as they were
    for epoch in (0, 1):
        expected = []
        for rank in range(world):
            fresh = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=0)
            fresh.set_epoch(epoch)
            expected.append(list(fresh))
        assert orders[epoch] == expected and set().union(*orders[epoch]) == set(range(n))
    squares = [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_height() == 0.8]
    per_rank = math.ceil(n / world)
    assert len(squares) == 2 * world * per_rank  # one square (or half square) per read, in both epochs
    for rank in range(world):
        colour = to_rgba(nb05.RANK_COLOURS[rank])
        assert sum(p.get_facecolor() == colour for p in squares) == 2 * per_rank


def test_diagrams_of_05_refuse_what_they_cannot_draw():
    from torch.utils.data import DistributedSampler

    import diagrams.nb05 as nb05

    with pytest.raises(DiagramError, match="2 to"):
        nb05.plot_all_reduce([torch.zeros(3)])
    with pytest.raises(DiagramError, match="at most 40"):
        nb05.plot_sampler([DistributedSampler(range(100), num_replicas=2, rank=0)])


# ---- notebook 02 (diagrams/nb02.py): convolution, max-pooling, the CNN's shapes -------------------------------


def _texts(fig) -> str:
    """Every text drawn on a figure (titles, labels, cell numbers), joined: what a reader of the picture sees."""
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


def test_nb02_convolution_diagram_draws_what_the_module_computes():
    import matplotlib.pyplot as plt
    import torch
    import torch.nn.functional as F
    from torch import nn

    from diagrams import DiagramError, nb02

    torch.manual_seed(0)
    x = torch.randint(0, 8, (5, 6)).float()
    for padding, stride, position in ((1, 1, (1, 2)), (0, 2, (1, 0))):
        conv = nn.Conv2d(1, 1, 3, padding=padding, stride=stride, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.randint(-2, 3, (1, 1, 3, 3)).float())
        d = nb02.draw_convolution(conv, x, position)
        expected = F.conv2d(x[None, None], conv.weight.detach(), padding=padding, stride=stride)[0, 0]
        assert torch.equal(d.output, expected)
        assert d.output.shape == ((5 + 2 * padding - 3) // stride + 1, (6 + 2 * padding - 3) // stride + 1)
        assert d.padded.shape == (5 + 2 * padding, 6 + 2 * padding)
        assert d.value == float(expected[position]) == float((d.window * conv.weight.detach()[0, 0]).sum())
        shown = _texts(d.figure)
        assert f"output {d.output.shape[0]}x{d.output.shape[1]}" in shown and "filter 3x3" in shown
        assert f"= {d.value:g}" in shown
        plt.close(d.figure)
    with pytest.raises(DiagramError, match="one filter on one channel"):
        nb02.draw_convolution(nn.Conv2d(3, 1, 3), x)
    with pytest.raises(DiagramError, match="outside the output"):
        nb02.draw_convolution(nn.Conv2d(1, 1, 3), x, (3, 0))


def test_nb02_max_pool_diagram_marks_each_windows_maximum():
    import matplotlib.pyplot as plt
    import torch
    from torch import nn

    from diagrams import DiagramError, nb02

    torch.manual_seed(1)
    for size, dropped in ((4, 0), (5, 9)):
        x = torch.randperm(size * size).float().view(size, size)
        d = nb02.draw_max_pool(nn.MaxPool2d(2), x)
        assert torch.equal(d.output, nn.MaxPool2d(2)(x[None, None])[0, 0])
        assert d.output.shape == (size // 2, size // 2)
        for (i, j), (r, c) in d.argmax.items():
            assert 2 * i <= r < 2 * i + 2 and 2 * j <= c < 2 * j + 2
            assert x[r, c] == d.output[i, j]
        assert len(d.dropped) == dropped
        assert f"output {size // 2}x{size // 2}" in _texts(d.figure)
        plt.close(d.figure)
    with pytest.raises(DiagramError, match="non-overlapping"):
        nb02.draw_max_pool(nn.MaxPool2d(3, stride=1), torch.zeros(4, 4))


def test_nb02_network_diagram_shapes_come_from_the_model():
    import matplotlib.pyplot as plt
    import torch

    from diagrams import DiagramError, nb02
    from helpers import cifar

    for widths in ((32, 64, 64), (64, 256, 256)):
        model = cifar.CifarNet(widths=widths)
        x = torch.randn(2, 3, 32, 32)
        d = nb02.draw_network(model, x)
        names = [name for name, _, _ in d.stages]
        assert names == ["input", "stem", "group 1", "group 2", "group 3", "global max-pool", "head"]
        with torch.no_grad():  # step through the model by hand: the diagram must agree with it
            h = model.stem(x)
            expected = [(3, 32, 32), tuple(h.shape[1:])]
            h = model.act(h)
            for group in model.groups:
                h = group(h)
                expected.append(tuple(h.shape[1:]))
            expected += [(widths[-1],), tuple(model(x).shape[1:])]
        assert [shape for _, shape, _ in d.stages] == expected
        assert expected[1:5] == [(24, 31, 31), (widths[0], 15, 15), (widths[1], 7, 7), (widths[2], 3, 3)]
        assert expected[-1] == (10,)
        shown = _texts(d.figure)
        for shape in expected:
            assert str(shape) in shown
        assert model.training  # the forward pass left the model as it was
        plt.close(d.figure)
    with pytest.raises(DiagramError, match="CifarNet"):
        nb02.network_stages(torch.nn.Linear(3, 2), torch.randn(1, 3))


# ---- notebook 04 (diagrams/nb04.py): one head's scaled dot-product attention, the multi-head split -------------


def _tiny_bert(hidden=32, heads=4, layers=2, seed=0):
    """A small random BERT with eager attention (so it returns its weights), in eval mode."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        hidden_size=hidden,
        num_attention_heads=heads,
        num_hidden_layers=layers,
        intermediate_size=16,
        vocab_size=50,
        max_position_embeddings=64,
        attn_implementation="eager",
    )
    return BertModel(config, add_pooling_layer=False).eval()


def test_nb04_head_picture_holds_the_models_own_matrices():
    from matplotlib.image import AxesImage

    from diagrams import nb04

    model = _tiny_bert()
    ids = torch.randint(1, 50, (1, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True, output_attentions=True)
    tokens = [f"t{i}" for i in range(7)]
    for layer, head in ((0, 0), (1, 3)):
        module = model.encoder.layer[layer].attention.self
        pic = nb04.draw_attention_head(module, out.hidden_states[layer], head=head, tokens=tokens)
        m = pic.matrices
        assert [tuple(t.shape) for t in m.values()] == [(7, 8), (8, 7), (7, 7), (7, 7), (7, 8), (7, 8)]
        assert torch.allclose(m["A = softmax"], out.attentions[layer][0, head], atol=1e-6)  # what the model computed
        with torch.no_grad():
            own = module(out.hidden_states[layer])[0][0, :, head * 8 : (head + 1) * 8]
        assert torch.allclose(m["A V_h"], own, atol=1e-6)  # this head's slice of the module's output
        assert torch.allclose(m["Q_h K_hᵀ / √d"], m["Q_h"] @ m["K_hᵀ"] / 8**0.5)
        images = [im for ax in pic.figure.axes for im in ax.get_images() if isinstance(im, AxesImage)]
        assert len(images) == 6 and all(
            torch.equal(torch.as_tensor(im.get_array().data), t.float()) for im, t in zip(images, m.values())
        )
        shown = _texts(pic.figure)
        assert all(f"{name}  {tuple(t.shape)}" in shown for name, t in m.items())
        assert "head size d = 8" in shown and "t6" in shown and pic.figure.dpi >= 100
        plt.close(pic.figure)


def test_nb04_head_picture_refuses_what_it_cannot_draw():
    from diagrams import nb04

    model = _tiny_bert()
    module = model.encoder.layer[0].attention.self
    with pytest.raises(DiagramError, match="one input"):
        nb04.draw_attention_head(module, torch.zeros(2, 5, 32))
    with pytest.raises(DiagramError, match="at most"):
        nb04.draw_attention_head(module, torch.zeros(1, nb04.MAX_TOKENS + 1, 32))
    with pytest.raises(DiagramError, match="heads 0 to 3"):
        nb04.draw_attention_head(module, torch.zeros(1, 5, 32), head=4)
    with pytest.raises(DiagramError, match="self-attention module"):
        nb04.draw_attention_head(torch.nn.Linear(32, 32), torch.zeros(1, 5, 32))


@pytest.mark.parametrize("hidden, heads", [(32, 4), (384, 12), (768, 12)])
def test_nb04_split_shapes_are_the_tensors_of_a_real_layer(hidden, heads):
    from diagrams import nb04

    model = _tiny_bert(hidden, heads, layers=1)
    batch, n, d = 2, 5, hidden // heads
    ids = torch.randint(1, 50, (batch, n), generator=torch.Generator().manual_seed(2))
    layer = model.encoder.layer[0].attention
    with torch.no_grad():  # step through the real layer: the diagram must agree with every tensor
        out = model(input_ids=ids, output_hidden_states=True, output_attentions=True)
        x = out.hidden_states[0]
        q, v = layer.self.query(x), layer.self.value(x)
        viewed = q.view(batch, n, heads, d)
        per_head = viewed.transpose(1, 2)
        weights = out.attentions[0]
        context = weights @ v.view(batch, n, heads, d).transpose(1, 2)
        merged = context.transpose(1, 2).reshape(batch, n, hidden)
        output = layer.output.dense(merged)
        assert torch.allclose(merged, layer.self(x)[0], atol=1e-5)
    split = nb04.draw_multi_head_split(model, tokens=n, batch=batch)
    expected = [tuple(t.shape) for t in (x, q, viewed, per_head, weights, context, merged, output)]
    assert [shape for _, shape in split.stages] == expected
    assert expected[3] == (batch, heads, n, d) and expected[4] == (batch, heads, n, n)
    assert split.slices == [(h * d, (h + 1) * d) for h in range(heads)]
    bars = [p for p in split.figure.axes[0].patches if isinstance(p, Rectangle) and p.get_height() == 0.5]
    assert len(bars) == heads and all(abs(p.get_width() - bars[0].get_width()) < 1e-9 for p in bars)
    shown = _texts(split.figure)
    assert all(str(shape).replace(" ", "") in shown for shape in expected)
    assert f"hidden size {hidden} = {heads} heads x {d}" in shown and split.figure.dpi >= 100
    assert nb04.draw_multi_head_split(model.config, tokens=n, batch=batch).stages == split.stages  # a config works too


def test_nb04_split_refuses_what_it_cannot_draw():
    from types import SimpleNamespace

    from diagrams import nb04

    with pytest.raises(DiagramError, match="not a multiple"):
        nb04.draw_multi_head_split(SimpleNamespace(hidden_size=30, num_attention_heads=4), tokens=5)
    with pytest.raises(DiagramError, match="hidden_size, num_attention_heads"):
        nb04.draw_multi_head_split(torch.nn.Linear(3, 3), tokens=5)
    with pytest.raises(DiagramError, match="at least 1"):
        nb04.draw_multi_head_split(SimpleNamespace(hidden_size=32, num_attention_heads=4), tokens=0)


# ---- notebook 03 (diagrams/nb03.py): head+tail truncation, BERT and its classification head, padding ----------


def _nb03_tiny_bert_classifier(layers: int = 2, hidden: int = 16, heads: int = 2, labels: int = 2):
    """A randomly initialised BertForSequenceClassification small enough to build in milliseconds."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=3 * hidden,
        max_position_embeddings=40,
        num_labels=labels,
    )
    return BertForSequenceClassification(config)


def test_nb03_bert_classifier_shapes_follow_the_model():
    from diagrams import nb03

    model = _nb03_tiny_bert_classifier(layers=3, hidden=24, heads=4, labels=3)
    ids = torch.randint(1, 50, (5, 11))
    fig, stages = nb03.draw_bert_classifier(model, ids, new_parameters=["classifier.weight", "classifier.bias"])
    by_name = {s.name: s for s in stages}
    assert [s.shape for s in stages] == [(5, 11), (5, 11, 24), (5, 11, 24), (5, 24), (5, 24), (5, 24), (5, 3)]
    assert "encoder: 3 layers" in by_name
    assert "4 heads x 6" in by_name["encoder: 3 layers"].detail and "24→72→24" in by_name["encoder: 3 layers"].detail
    assert sum(s.parameters for s in stages) == sum(p.numel() for p in model.parameters())
    assert by_name["classifier"].parameters == 24 * 3 + 3
    assert [s.name for s in stages if s.new] == ["classifier"]
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "(5, 11, 24)" in texts and "(5, 3)" in texts and f"{by_name['embeddings'].parameters:,} params" in texts
    plt.close(fig)


def test_nb03_bert_classifier_marks_everything_new_that_is_new_and_rejects_other_models():
    from diagrams import DiagramError, nb03

    model = _nb03_tiny_bert_classifier()
    stages = nb03.bert_classifier_stages(
        model,
        torch.randint(1, 50, (2, 7)),
        [n for n, _ in model.named_parameters() if not n.startswith("bert.embeddings")],
    )
    assert [s.name for s in stages if s.new] == ["encoder: 2 layers", "pooler", "classifier"]
    assert model.training, "drawing must leave the model's train/eval mode as it was"
    with pytest.raises(DiagramError, match="BERT classifier"):
        nb03.draw_bert_classifier(torch.nn.Linear(3, 2), torch.zeros(1, 3, dtype=torch.long))


def test_nb03_truncation_segments_match_the_helpers_truncation():
    from diagrams import DiagramError, nb03
    from helpers import text

    full = list(range(1000, 1300))  # 300 text tokens
    budget = 126  # max_length 128 minus [CLS] and [SEP]
    head, tail = text.head_tail_sizes(budget)
    truncated = {rule: [101, *text.truncate_ids(full, budget, rule), 102] for rule in ("head", "head+tail")}
    fig, rows = nb03.draw_truncation([101, *full, 102], truncated, specials=(101, 102))
    assert [(r.name, r.head, r.dropped, r.tail) for r in rows] == [
        ("head", 126, 174, 0),
        ("head+tail", head, 300 - budget, tail),
    ]
    assert (head, tail) == (32, 94)
    assert "300-token review (126 tokens kept)" in fig._suptitle.get_text()
    plt.close(fig)
    assert nb03.kept_segments(full[:50], full[:50]) == (50, 0, 0)  # a short review is kept whole
    with pytest.raises(DiagramError, match="neither a head"):
        nb03.kept_segments(full, full[:10] + full[100:110])


def test_nb03_padding_share_equals_the_helpers_padding_fraction():
    import numpy as np

    from diagrams import nb03
    from helpers import text

    lengths = np.random.default_rng(0).integers(5, 200, size=300)
    batchings = {
        "random": text.random_batches(len(lengths), 16),
        "length-grouped": text.length_grouped_batches(lengths, 16),
    }
    fig, results = nb03.draw_padding(lengths, batchings, n_batches=3)
    for result in results:
        assert result.padding == pytest.approx(text.padding_fraction(lengths, batchings[result.name]))
        assert len(result.drawn) == 3
    assert results[1].padding < results[0].padding / 5  # grouping by length removes most of the padding
    drawn_rows = sum(len(b) for r in results for b in r.drawn)
    assert sum(len(ax.patches) >= 1 for ax in fig.axes) == 2 and drawn_rows == 2 * 3 * 16
    assert [f"{r.padding:.1%} of all tokens fed are [PAD]" in ax.get_title() for r, ax in zip(results, fig.axes)] == [
        True,
        True,
    ]
    plt.close(fig)


def test_nb03_nb04_figures_are_legible_on_a_projector():
    """Every figure of diagrams/nb03.py and nb04.py: at least 100 dpi, no text below 8 pt (issue 21)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from diagrams import nb03, nb04
    from helpers.plot import small_texts

    model = _nb03_tiny_bert_classifier()
    lengths = np.random.default_rng(0).integers(5, 60, 64)
    attn = torch.softmax(torch.randn(3, 4, 6, 6), dim=-1)
    tokens = ["[CLS]", "a", "longish", "review", ".", "[SEP]"]
    figures = {
        "draw_truncation": lambda: nb03.draw_truncation(
            list(range(1, 40)), {"head": list(range(1, 11)), "head+tail": [1, 2, 3, 35, 36, 37, 38, 39]}
        )[0],
        "draw_bert_classifier": lambda: nb03.draw_bert_classifier(
            model, torch.randint(1, 50, (2, 7)), ["classifier.weight", "classifier.bias"]
        )[0],
        "draw_padding": lambda: nb03.draw_padding(lengths, {"random": [np.arange(i, i + 8) for i in range(0, 64, 8)]})[
            0
        ],
        "plot_head": lambda: nb04.plot_head(attn[0, 0], tokens),
        "plot_model_view": lambda: nb04.plot_model_view(attn),
        "plot_token_rows": lambda: nb04.plot_token_rows(attn[:, 0, 0].numpy(), tokens, ["l0", "l1", "l2"], "rows"),
        "plot_head_scores": lambda: nb04.plot_head_scores(
            {
                "previous token": {"scores": np.random.rand(3, 4), "chance": 0.1},
                "[SEP]": {"scores": 0.02 * np.random.rand(3, 4), "chance": 0.005},
            }
        ),
        "draw_multi_head_split": lambda: nb04.draw_multi_head_split(model.config, tokens=6).figure,
    }
    plt.rcParams["figure.dpi"] = 72
    try:
        for name, make in figures.items():
            fig = make()
            fig.canvas.draw()
            assert fig.dpi >= 100, f"{name}: {fig.dpi} dpi"
            assert not small_texts(fig), f"{name}: text below 8 pt: {small_texts(fig)[:5]}"
    finally:
        plt.rcdefaults()
        plt.close("all")


def test_nb04_head_scores_give_each_panel_its_own_scale():
    """A weak score ([SEP], best 0.02) gets a colour scale up to its own best, not a shared 0-1 scale."""
    import matplotlib.pyplot as plt
    import numpy as np

    from diagrams import nb04

    fig = nb04.plot_head_scores(
        {
            "strong": {"scores": np.full((2, 3), 0.8), "chance": 0.01},
            "weak": {"scores": np.array([[0.02, 0.0, 0.01], [0.0, 0.005, 0.0]]), "chance": 0.005},
        }
    )
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert [im.get_clim()[1] for im in images] == pytest.approx([0.8, 0.02])
    assert "4x chance" in " ".join(ax.get_title() for ax in fig.axes)
    plt.close(fig)


def test_nb02_augmentation_views_are_what_the_loader_yields():
    """02 §3.1's viewer: each view is the one-image GpuLoader's batch for that epoch, i.e. cifar.augment with the
    labelled shift and flip; alternating flips invert every epoch; no shift and no flip give the image back."""
    from diagrams import nb02
    from helpers import cifar

    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    mean, std = cifar.channel_stats(images)
    views, shifts, flips = nb02.augmentation_views(images[1], mean, std, epochs=6, flip="random", translate=2, seed=3)
    loader = cifar.GpuLoader(
        images[1:2],
        torch.zeros(1, dtype=torch.long),
        batch_size=1,
        mean=mean,
        std=std,
        translate=2,
        flip="random",
        drop_last=False,
        seed=3,
        channels_last=False,
    )
    for e in range(6):
        loader.set_epoch(e)
        x, _ = next(iter(loader))
        assert torch.equal(views[e], (cifar.denormalize(x, mean, std) * 255).round().to(torch.uint8)[0])
        assert torch.equal(views[e], cifar.augment(images[1:2], torch.tensor([shifts[e]]), torch.tensor([flips[e]]))[0])
        assert all(abs(s) <= 2 for s in shifts[e])
    assert len(set(shifts)) > 1  # the shifts change from epoch to epoch
    _, _, alternating = nb02.augmentation_views(images[1], mean, std, epochs=4, flip="alternating", seed=3)
    assert [a != b for a, b in zip(alternating, alternating[1:])] == [True, True, True]
    plain, none_shifts, none_flips = nb02.augmentation_views(images[2], mean, std, epochs=3, flip=None, translate=0)
    assert all(torch.equal(v, images[2]) for v in plain) and none_shifts == [(0, 0)] * 3 and not any(none_flips)
    drawn = nb02.draw_augmentations(images[0], mean, std, epochs=5, flip="alternating", translate=1)
    assert len(drawn.figure.axes) == 5 and drawn.figure.dpi >= 100
    assert drawn.figure.axes[0].get_title().startswith("epoch 0")
    with pytest.raises(DiagramError, match="uint8"):
        nb02.augmentation_views(images[0].float(), mean, std)


def test_nb02_tta_viewer_shows_the_views_tta_logits_averages():
    """02 §5's viewer: six views with their weights, each view's probabilities from the model, and the average that
    cifar.tta_logits computes; moving the slider redraws for another image."""
    from diagrams import nb02
    from helpers import cifar

    torch.manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    mean, std = cifar.channel_stats(images)
    model, classes = cifar.CifarNet(widths=(8, 8, 8), logit_scale=3.0).eval(), [f"class {c}" for c in range(10)]
    drawn = nb02.draw_tta_views(model, images[0], mean, std, classes, label=3)
    x = cifar.normalize(images[:1], mean, std)
    with torch.no_grad():
        assert torch.allclose(drawn.averaged, cifar.tta_logits(model, x, 2)[0].softmax(-1), atol=1e-5)
        assert torch.allclose(drawn.probabilities[1], model(x.flip(-1))[0].softmax(-1), atol=1e-5)
    assert len(drawn.names) == 6 and sum(drawn.weights) == pytest.approx(1.0) and drawn.weights[0] == 0.25
    assert drawn.figure.dpi >= 100 and "true class: class 3" in drawn.figure.texts[0].get_text()
    explorer = nb02.TTAExplorer(model, images, torch.tensor([0, 1, 2]), mean, std, classes)
    before = explorer.shown.averaged.clone()
    explorer.image.value = 2  # moving the slider redraws for the new image
    with torch.no_grad():
        want = cifar.tta_logits(model, cifar.normalize(images[2:], mean, std), 2)[0].softmax(-1)
    assert not torch.equal(explorer.shown.averaged, before) and torch.allclose(explorer.shown.averaged, want, atol=1e-5)
    with pytest.raises(DiagramError, match="uint8"):
        nb02.draw_tta_views(model, images[0].float(), mean, std, classes)
