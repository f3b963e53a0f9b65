"""C: the linear controller a = tanh(W [z, h] + b), with its weights as one flat vector for CMA-ES."""
import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters


class LinearController(nn.Module):
    """in_size -> action_size, tanh-squashed. CarRacing: (32 + 256) * 3 + 3 = 867 parameters."""

    def __init__(self, in_size: int, action_size: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_size, action_size, bias=bias)

    def forward(self, x):
        return torch.tanh(self.linear(x))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def get_flat(self) -> np.ndarray:
        return parameters_to_vector(self.parameters()).detach().cpu().numpy().astype(np.float64)

    def set_flat(self, flat) -> "LinearController":
        flat = torch.as_tensor(np.asarray(flat), dtype=torch.float32)
        if flat.numel() != self.n_params:
            raise ValueError(f"expected {self.n_params} controller parameters, got {flat.numel()}")
        vector_to_parameters(flat.to(self.linear.weight.device), self.parameters())
        return self
