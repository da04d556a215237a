"""torchvision's model zoo for test_zoo.py: every classification model (all have convolutions), plus
segmentation and video (3-d convolution) models, each with the smallest input it accepts.

Weights are random and seeded (no download). Inputs are small so the whole zoo, scripted and
traced, rewrites and differentiates within the CI budget on two cores.
"""
import torch
import torchvision.models as models
import torchvision.models.segmentation as segmentation
import torchvision.models.video as video

SMALL_IMAGE = (1, 3, 64, 64)

# Models whose input cannot be that small: a fixed image size (given as a smaller one where the
# builder takes it), or more downsampling than 64 pixels survive.
IMAGE_SIZE_ARGUMENT = {'vit_b_16': 32, 'vit_b_32': 32, 'vit_l_16': 32, 'vit_l_32': 32, 'vit_h_14': 28}
INPUT_SHAPE = {
    'inception_v3': (1, 3, 80, 80),
    'maxvit_t': (1, 3, 224, 224),  # partition size 7 at every stage
    **{name: (1, 3, size, size) for name, size in IMAGE_SIZE_ARGUMENT.items()},
}

SEGMENTATION = ['lraspp_mobilenet_v3_large', 'deeplabv3_mobilenet_v3_large']
# s3d and mvit are left out: their pooling and positional embeddings need 16x224x224 clips, too
# slow for two CPU cores; these three cover 3-d and (2+1)-d convolutions.
VIDEO = {'r3d_18': (1, 3, 4, 32, 32), 'mc3_18': (1, 3, 4, 32, 32), 'r2plus1d_18': (1, 3, 4, 32, 32)}

# One model per architecture family, for the fast test tier (the full zoo runs under --full):
# plain and bottleneck ResNets, MobileNet v2 and v3, EfficientNet, RegNet (grouped), ConvNeXt,
# DenseNet, GoogLeNet, Inception, SqueezeNet, ShuffleNet, ResNeXt (grouped), a ViT, a Swin, one
# segmentation and one video model.
FAMILIES = ('resnet18', 'resnet50', 'mobilenet_v2', 'mobilenet_v3_small', 'efficientnet_b0',
            'regnet_y_400mf', 'convnext_tiny', 'densenet121', 'googlenet', 'inception_v3',
            'squeezenet1_1', 'shufflenet_v2_x0_5', 'resnext50_32x4d', 'vit_b_32', 'swin_t',
            'lraspp_mobilenet_v3_large', 'r2plus1d_18')

# Over 190M parameters: run one at a time (ctest RUN_SERIAL), each holds several GB.
GIANTS = ('regnet_y_128gf', 'vit_h_14', 'vit_l_16', 'vit_l_32', 'convnext_large')


def _classification(name):
    kwargs = {'weights': None, 'num_classes': 10}
    if name in IMAGE_SIZE_ARGUMENT:
        kwargs['image_size'] = IMAGE_SIZE_ARGUMENT[name]
    if name in ('googlenet', 'inception_v3'):
        kwargs.update(aux_logits=False, init_weights=True)
    return models.get_model(name, **kwargs), INPUT_SHAPE.get(name, SMALL_IMAGE)


def _segmentation(name):
    model = getattr(segmentation, name)(weights=None, weights_backbone=None, num_classes=3)
    return model, SMALL_IMAGE


def _video(name):
    return getattr(video, name)(weights=None, num_classes=10), VIDEO[name]


def names():
    """Every zoo model's name: classification, then segmentation, then video."""
    return models.list_models(module=models) + SEGMENTATION + list(VIDEO)


def build(name, seed=0):
    """Model `name` in eval mode with seeded random weights and batch-norm statistics, and an input."""
    torch.manual_seed(seed)
    if name in SEGMENTATION:
        model, shape = _segmentation(name)
    elif name in VIDEO:
        model, shape = _video(name)
    else:
        model, shape = _classification(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval(), torch.randn(shape)
