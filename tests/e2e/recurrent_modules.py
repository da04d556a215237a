"""Scriptable wrappers that call a recurrent layer each way the tests need (padded, with initial
states, over a packed batch), shared by the rewritten-model and eager-mode tests."""
import torch.nn as nn


class Padded(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)


class LstmWithState(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, h0, c0):
        return self.layer(x, (h0, c0))


class SingleStateWithState(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, h0):
        return self.layer(x, h0)


class Packed(nn.Module):
    """The layer over unsorted sequences of different lengths, packed, then padded again."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=self.layer.batch_first,
                                                   enforce_sorted=False)
        out, state = self.layer(packed)
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=self.layer.batch_first)
        return padded, state


class PackedLstmWithState(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x, lengths, h0, c0):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=self.layer.batch_first,
                                                   enforce_sorted=False)
        out, state = self.layer(packed, (h0, c0))
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=self.layer.batch_first)
        return padded, state
