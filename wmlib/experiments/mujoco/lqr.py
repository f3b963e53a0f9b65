"""A planning problem with a known optimum: a linear system with quadratic cost over a finite horizon.

z' = A z + B a, reward r(z, a) = -(z'Qz + a'Ra), terminal value V(z) = -z'P z. With discount 1 the
optimal plan follows from the backward Riccati recursion, so a planner's first action and plan cost
can be checked against it. The object speaks the planner's model interface (next, reward, value, pi).
"""
import torch
from torch.distributions import Normal


class LinearQuadratic:
    def __init__(self, A, B, Q, R, P, prior_std: float = 0.05):
        self.A, self.B, self.Q, self.R, self.P = (torch.as_tensor(m, dtype=torch.float32) for m in (A, B, Q, R, P))
        self.prior_std = prior_std

    @classmethod
    def double_integrator(cls, dt: float = 0.1):
        """Position and velocity, force input: the textbook case."""
        return cls(A=[[1, dt], [0, 1]], B=[[0], [dt]], Q=torch.eye(2), R=[[0.1]], P=torch.eye(2))

    # --- the planner's model interface (batched: z [N, 2], a [N, 1]) -------------------------------
    def next(self, z, a):
        return z @ self.A.T + a @ self.B.T

    def reward(self, z, a):
        return -((z @ self.Q) * z).sum(-1) - ((a @ self.R) * a).sum(-1)

    def value(self, z):
        return -((z @ self.P) * z).sum(-1)

    def pi(self, z):
        """A policy prior: the optimal one-step-ahead feedback with a little noise."""
        return Normal(-(z @ self.gains(1)[0].T), self.prior_std)

    # --- the closed-form optimum -----------------------------------------------------------------
    def gains(self, horizon: int) -> list[torch.Tensor]:
        """Feedback gains K_0..K_{H-1} of the optimal plan a_t = -K_t z_t (backward Riccati recursion)."""
        P, gains = self.P, []
        for _ in range(horizon):
            K = torch.linalg.solve(self.R + self.B.T @ P @ self.B, self.B.T @ P @ self.A)
            P = self.Q + self.A.T @ P @ (self.A - self.B @ K)
            gains.append(K)
        return gains[::-1]

    def optimal_plan(self, z0, horizon: int) -> torch.Tensor:
        """[H, action_dim] optimal open-loop actions from z0 [state_dim]."""
        z, actions = z0, []
        for K in self.gains(horizon):
            actions.append(-K @ z)
            z = self.A @ z + self.B @ actions[-1]
        return torch.stack(actions)

    def plan_return(self, z0, actions) -> float:
        """Return of the action sequence [H, action_dim] from z0: what the planner maximises (discount 1)."""
        z, total = z0[None], 0.0
        for a in actions:
            total += self.reward(z, a[None]).item()
            z = self.next(z, a[None])
        return total + self.value(z).item()
