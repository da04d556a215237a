"""Sample models with convolutions, shared by the sample maker, the tests and the benchmark.

Each entry: name -> (factory, example input shape). Weights are random but seeded.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallUNet(nn.Module):
    """Two-level UNet: convs, batch norm, max pooling, a transposed conv and a skip concat."""

    def __init__(self, channels=3, width=16, classes=2):
        super().__init__()
        self.enc1 = self._block(channels, width)
        self.enc2 = self._block(width, 2 * width)
        self.up = nn.ConvTranspose2d(2 * width, width, kernel_size=2, stride=2)
        self.dec1 = self._block(2 * width, width)
        self.head = nn.Conv2d(width, classes, kernel_size=1)

    @staticmethod
    def _block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        d1 = self.dec1(torch.cat([self.up(e2), e1], dim=1))
        return self.head(d1)


class AudioConvNet(nn.Module):
    """Conv1d front end over a waveform, then pooling and a linear classifier."""

    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 16, kernel_size=9, stride=4, padding=4)
        self.conv2 = nn.Conv1d(16, 32, kernel_size=5, padding='same', dilation=2)
        self.norm = nn.GroupNorm(4, 32)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.norm(self.conv2(x)))
        return self.fc(x.mean(dim=-1))


def resnet18():
    import torchvision
    return torchvision.models.resnet18(num_classes=10)


SAMPLES = {
    'resnet18': (resnet18, (2, 3, 64, 64)),
    'unet': (SmallUNet, (2, 3, 32, 32)),
    'audio': (AudioConvNet, (2, 1, 1600)),
}


def build(name, seed=0):
    """The sample model `name` in eval mode with seeded random weights, and an example input."""
    factory, shape = SAMPLES[name]
    torch.manual_seed(seed)
    model = factory()
    with torch.no_grad():  # non-trivial running stats, so eval-mode batch norm is exercised
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval(), torch.randn(shape)


def save(name, mode, path, seed=0):
    """Saves sample `name` as TorchScript, `mode` 'scripted' or 'traced'."""
    model, example = build(name, seed)
    module = torch.jit.script(model) if mode == 'scripted' else torch.jit.trace(model, example)
    module.save(path)
    return example
