"""Small models with the shapes real TorchScript files contain, for test_model_shapes.py.

Each model is tiny so that a test can script, trace, rewrite and differentiate all of them in
seconds; what matters is where the convolution sits, not how big it is.
"""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvInIf(nn.Module):
    """A different convolution on each branch of a data-dependent prim::If."""

    def __init__(self):
        super().__init__()
        self.positive = nn.Conv2d(3, 4, 3, padding=1)
        self.negative = nn.Conv2d(3, 4, 5, padding=2, bias=False)

    def forward(self, x):
        if bool(x.mean() > 0):
            return torch.relu(self.positive(x))
        return self.negative(x) * 2


class ConvInLoop(nn.Module):
    """One convolution applied in a prim::Loop, so its weight is used on every iteration."""

    def __init__(self, steps: int = 3):
        super().__init__()
        self.steps = steps
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.stages = nn.ModuleList([nn.Conv2d(4, 4, 1) for _ in range(2)])

    def forward(self, x):
        for _ in range(self.steps):
            x = torch.tanh(self.conv(x)) + x
        for stage in self.stages:
            x = stage(x)
        return x


class ExportedMethods(nn.Module):
    """Convolutions reached only from @torch.jit.export methods, and from forward through them."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.decoder = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)

    @torch.jit.export
    def encode(self, x):
        return F.relu(self.encoder(x))

    @torch.jit.export
    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class SharedSubmodule(nn.Module):
    """One block registered twice and called three times: one weight, gradients accumulated."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.alias = self.block

    def forward(self, x):
        return self.alias(self.block(self.block(x)))


class RunTimeWeights(nn.Module):
    """F.conv* with weights computed in forward (not parameters): 1d, 2d grouped, 3d, transposed."""

    def __init__(self):
        super().__init__()
        self.base = nn.Parameter(torch.randn(6, 2, 3, 3) * 0.3)
        self.scale = nn.Parameter(torch.randn(6, 1, 1, 1))
        self.bias = nn.Parameter(torch.randn(6) * 0.1)
        self.kernel1d = nn.Parameter(torch.randn(3, 1, 5) * 0.3)
        self.kernel3d = nn.Parameter(torch.randn(2, 3, 1, 3, 3) * 0.3)

    def forward(self, x):
        weight = self.base * torch.sigmoid(self.scale)
        y = F.conv2d(x, weight, self.bias, padding=1, groups=3)  # 6 -> 6 channels, 3 groups
        up = F.conv_transpose2d(y, weight[:, :1].repeat(1, 2, 1, 1).contiguous(), stride=2, groups=1)
        signal = F.conv1d(y.mean(dim=2), self.kernel1d.repeat(2, 1, 1), padding=2, groups=6)
        volume = F.conv3d(y[:, :3].unsqueeze(2), self.kernel3d.flip(-1), padding=(0, 1, 1))
        return up.sum(dim=(2, 3)) + signal.sum(dim=2)[:, :2] + volume.sum(dim=(2, 3, 4))


class BufferWeights(nn.Module):
    """Convolution weights held as buffers (a fixed smoothing kernel) next to a parameter conv."""

    def __init__(self):
        super().__init__()
        self.register_buffer('smooth', torch.full((3, 1, 3, 3), 1.0 / 9))
        self.conv = nn.Conv2d(3, 5, 3)

    def forward(self, x):
        return self.conv(F.conv2d(x, self.smooth, padding=1, groups=3))


class InPlaceAfterConv(nn.Module):
    """In-place ops on a convolution's output, and on a view of it, before anything else reads it."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 6, 3, padding=1)

    def forward(self, x):
        y = self.conv1(x)
        y.add_(1.0)
        y[:, :2].mul_(0.5)
        y.relu_()
        z = self.conv2(y)
        z += y
        return z.clamp_(min=-1.0, max=3.0)


class PaddingModes(nn.Module):
    """padding_mode reflect, replicate and circular (1d, 2d, 3d), and zeros for contrast."""

    def __init__(self):
        super().__init__()
        self.reflect = nn.Conv2d(3, 4, 3, padding=1, padding_mode='reflect')
        self.replicate = nn.Conv2d(4, 4, (3, 5), padding=(1, 2), padding_mode='replicate')
        self.circular = nn.Conv2d(4, 4, 3, padding=2, dilation=2, padding_mode='circular')
        self.circular1d = nn.Conv1d(4, 2, 3, padding=1, padding_mode='circular')
        self.replicate3d = nn.Conv3d(1, 2, 3, padding=1, padding_mode='replicate')
        self.zeros = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.zeros(self.circular(self.replicate(self.reflect(x))))
        line = self.circular1d(y.mean(dim=2))
        volume = self.replicate3d(y[:, :1].unsqueeze(1))
        return line.sum(dim=1) + volume.mean(dim=(1, 2, 3)).unsqueeze(1)


class SameValidPadding(nn.Module):
    """String padding: 'same' with an even kernel and a dilation (asymmetric), and 'valid'."""

    def __init__(self):
        super().__init__()
        self.same_even = nn.Conv2d(3, 4, 4, padding='same')
        self.same_dilated = nn.Conv2d(4, 4, (2, 3), padding='same', dilation=(3, 1))
        self.valid = nn.Conv2d(4, 2, 3, padding='valid')
        self.same1d = nn.Conv1d(2, 2, 6, padding='same', dilation=2)

    def forward(self, x):
        y = self.valid(self.same_dilated(self.same_even(x)))
        return self.same1d(y.flatten(2))


class TupleOutputs(nn.Module):
    """Several outputs, one of them a list, from shared features (detection-head shape)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.heads = nn.ModuleList([nn.Conv2d(8, n, 1) for n in (2, 4)])

    def forward(self, x) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        features = F.relu(self.stem(x))
        outputs: List[torch.Tensor] = []
        for head in self.heads:
            outputs.append(head(features))
        return features.mean(dim=(2, 3)), outputs


class ExplicitConvolutionBackward(nn.Module):
    """A graph that calls aten::convolution_backward itself (a hand-written backward)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4, 3, 3, 3) * 0.3)

    def forward(self, x, grad_output):
        grads = torch.ops.aten.convolution_backward(grad_output, x, self.weight, [4], [1, 1], [1, 1], [1, 1],
                                                    False, [0, 0], 1, [True, True, True])
        return grads[0], grads[1], grads[2]


# name -> (factory, input shapes, traceable): traced versions freeze control flow and lose
# exported methods, so models whose point is those are scripted only.
MODELS = {
    'conv_in_if': (ConvInIf, [(2, 3, 8, 8)], False),
    'conv_in_loop': (ConvInLoop, [(2, 4, 8, 8)], True),
    'exported_methods': (ExportedMethods, [(2, 3, 8, 8)], False),
    'shared_submodule': (SharedSubmodule, [(2, 4, 6, 6)], True),
    'run_time_weights': (RunTimeWeights, [(2, 6, 6, 6)], True),
    'buffer_weights': (BufferWeights, [(2, 3, 7, 7)], True),
    'in_place_after_conv': (InPlaceAfterConv, [(2, 3, 6, 6)], True),
    'padding_modes': (PaddingModes, [(2, 3, 9, 9)], True),
    'same_valid_padding': (SameValidPadding, [(2, 3, 9, 10)], True),
    'tuple_outputs': (TupleOutputs, [(2, 3, 8, 8)], False),
    'explicit_convolution_backward': (ExplicitConvolutionBackward, [(2, 3, 6, 6), (2, 4, 6, 6)], False),
}


def build(name, seed=0):
    """Model `name` in eval mode with seeded weights (and batch-norm statistics), and its inputs."""
    factory, shapes, _ = MODELS[name]
    torch.manual_seed(seed)
    model = factory()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval(), [torch.randn(shape) for shape in shapes]
