"""CarRacing-v3 with the paper's preprocessing: drop the dashboard (rows 84..95), resize to 64x64; and
FastCarRacing, gymnasium's CarRacing-v3 with its road drawn from numpy arrays (the same pixels, several times faster).
"""
import math

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d import car_racing
from gymnasium.spaces import Box
from gymnasium.wrappers import ResizeObservation, TransformObservation

CARRACING_ACTION_SIZE = 3
FAST_ID = "wmlib/CarRacing-v3"
EDGE = 4.0  # pixels: a polygon this far off the window cannot reach it, anti-aliased edges included


class FastCarRacing(car_racing.CarRacing):
    """gymnasium's CarRacing-v3, bit for bit (observations, rewards, terminations, truncations; tests/test_envs.py
    compares whole episodes), with the road drawn the fast way. gymnasium rotates and culls each of the ~730
    background, grass and road polygons in Python every frame (`_draw_colored_polygon`, three quarters of a step)
    to draw the ~45 on screen; here all their vertices are transformed at once with numpy, with pygame's own
    arithmetic (Vector2.rotate_rad: the angle reduced to [0, 2 pi), exact quarter turns within 1e-6), the same
    culling rule and the same drawing order, and only the visible ones reach pygame."""

    _GRASS = np.array([[(car_racing.GRASS_DIM * x + dx, car_racing.GRASS_DIM * y + dy)
                        for dx, dy in ((car_racing.GRASS_DIM, 0), (0, 0), (0, car_racing.GRASS_DIM),
                                       (car_racing.GRASS_DIM, car_racing.GRASS_DIM))]
                       for x in range(-20, 20, 2) for y in range(-20, 20, 2)], dtype=np.float64)
    _FIELD = car_racing.PLAYFIELD * np.array([[(1, 1), (1, -1), (-1, -1), (-1, 1)]], dtype=np.float64)  # background

    def _render_road(self, zoom, translation, angle):
        if getattr(self, "_road_of", None) is not self.road_poly or len(self._polys) != len(self._GRASS) + len(
                self.road_poly):
            # grass then road, in gymnasium's drawing order, as one array once per track (the road's colours are
            # read when drawn: a tile the car touches changes colour in place)
            self._road_of = self.road_poly
            road = np.array([[p[:2] for p in poly] for poly, _ in self.road_poly], dtype=np.float64)
            self._polys = np.concatenate([self._GRASS, road.reshape(-1, 4, 2)])
        x, y = self._screen(self._FIELD, zoom, translation, angle)
        if covers_screen(x, y):
            self.surf.fill(self.bg_color)  # what filling a polygon larger than the screen gives, ten times faster
        else:
            self.surf.fill((0, 0, 0))  # a new Surface's black, around the field
            self._draw(x[0], y[0], self.bg_color)
        x, y = self._screen(self._polys, zoom, translation, angle)
        W, H, m, edge = car_racing.WINDOW_W, car_racing.WINDOW_H, car_racing.MAX_SHAPE_DIM, EDGE
        drawn = ((-m <= x) & (x <= W + m) & (-m <= y) & (y <= H + m)).any(1)  # gymnasium's rule
        # of those, the ones that can change a pixel: gymnasium's margin (380 pixels) lets it draw many polygons
        # that lie wholly off the window, which leave every pixel as it was
        on_screen = (x.max(1) >= -edge) & (x.min(1) <= W + edge) & (y.max(1) >= -edge) & (y.min(1) <= H + edge)
        visible = drawn & on_screen
        n_grass = len(self._GRASS)
        for i in np.flatnonzero(visible).tolist():
            color = self.grass_color if i < n_grass else [int(c) for c in self.road_poly[i - n_grass][1]]
            self._draw(x[i], y[i], color)

    def _draw(self, x, y, color):
        """One polygon, screen coordinates x, y (k,), as `_draw_colored_polygon` draws it."""
        poly = list(zip(x.tolist(), y.tolist()))
        car_racing.gfxdraw.aapolygon(self.surf, poly, color)
        car_racing.gfxdraw.filled_polygon(self.surf, poly, color)

    @staticmethod
    def _screen(polys, zoom, translation, angle):
        """World (N, k, 2) -> screen x, y (N, k): gymnasium's rotation, zoom and translation, operation by operation."""
        x, y = rotate_like_pygame(polys[..., 0], polys[..., 1], angle)
        return x * zoom + translation[0], y * zoom + translation[1]

    def _render(self, mode: str):
        """gymnasium's `_render` (1.4.0) for observations, with two surfaces reused (the road drawing clears the first,
        the vertical flip overwrites the second), the score's font made once and each score's text rendered once."""
        if "t" not in self.__dict__ or mode != "state_pixels":
            return super()._render(mode)
        pygame, W, H = car_racing.pygame, car_racing.WINDOW_W, car_racing.WINDOW_H
        if not hasattr(self, "_font"):
            pygame.font.init()
            self._font, self._texts = pygame.font.Font(pygame.font.get_default_font(), 42), {}
            self._canvas, self._flipped = pygame.Surface((W, H)), pygame.Surface((W, H))
        self.surf = self._canvas
        angle = -self.car.hull.angle
        zoom = 0.1 * car_racing.SCALE * max(1 - self.t, 0) + car_racing.ZOOM * car_racing.SCALE * min(self.t, 1)
        scroll_x, scroll_y = -(self.car.hull.position[0]) * zoom, -(self.car.hull.position[1]) * zoom
        trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
        trans = (W / 2 + trans[0], H / 4 + trans[1])
        self._render_road(zoom, trans, angle)
        self.car.draw(self.surf, zoom, trans, angle, False)
        pixels = pygame.surfarray.pixels2d(self._flipped)
        np.copyto(pixels, pygame.surfarray.pixels2d(self._canvas)[:, ::-1])  # transform.flip's pixels, faster
        del pixels  # unlocks the surface for drawing
        self.surf = self._flipped
        self._render_indicators(W, H)
        score = f"{self.reward:04.0f}"
        if score not in self._texts:
            self._texts[score] = self._font.render(score, True, (255, 255, 255), (0, 0, 0))
        text = self._texts[score]
        text_rect = text.get_rect()
        text_rect.center = (60, H - H * 2.5 / 40.0)
        self.surf.blit(text, text_rect)
        return self._create_image_array(self.surf, (car_racing.STATE_W, car_racing.STATE_H))


def covers_screen(x: np.ndarray, y: np.ndarray, margin: float = EDGE) -> bool:
    """Whether the convex quadrilateral x, y (1, 4) holds the whole window, `margin` pixels round it included
    (so that no anti-aliased edge reaches it)."""
    corners = [(-margin, -margin), (car_racing.WINDOW_W + margin, -margin),
               (car_racing.WINDOW_W + margin, car_racing.WINDOW_H + margin), (-margin, car_racing.WINDOW_H + margin)]
    vx, vy = x[0], y[0]
    ex, ey = np.roll(vx, -1) - vx, np.roll(vy, -1) - vy
    sides = [np.sign(ex * (py - vy) - ey * (px - vx)) for px, py in corners]
    return all(np.all(side == sides[0][0]) for side in sides)


def rotate_like_pygame(x: np.ndarray, y: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """pygame-ce's Vector2.rotate_rad on arrays, to the last bit: the angle reduced to [0, 2 pi), a rotation within
    1e-6 of a quarter turn done exactly (coordinates swapped), otherwise cos * x - sin * y, sin * x + cos * y."""
    eps = 1e-6
    a = math.fmod(angle, 2 * math.pi)
    if a < 0:
        a += 2 * math.pi
    if math.fmod(a + eps, math.pi / 2) < 2 * eps:
        quarter = int((a + eps) / (math.pi / 2)) % 4
        return [(x, y), (-y, x), (-x, -y), (y, -x)][quarter]
    c, s = math.cos(a), math.sin(a)
    return c * x - s * y, s * x + c * y


def first_difference(seed: int, policy, max_steps: int = 1000) -> tuple[int | None, int, dict]:
    """gymnasium's CarRacing-v3 and FastCarRacing stepped side by side on `seed` with the same actions,
    policy(env, t) -> action (env: gymnasium's, unwrapped). Returns (the first step whose observation, reward,
    termination or truncation differs, None if none did; the steps taken; the last info)."""
    envs = [gym.make(env_id, continuous=True, domain_randomize=False, max_episode_steps=max_steps)
            for env_id in ("CarRacing-v3", FAST_ID)]
    (a, _), (b, _) = (env.reset(seed=seed) for env in envs)
    if not np.array_equal(a, b):
        return 0, 0, {}
    for t in range(1, max_steps + 1):
        action = policy(envs[0].unwrapped, t)
        out_a, out_b = (env.step(action) for env in envs)
        if not np.array_equal(out_a[0], out_b[0]) or out_a[1:4] != out_b[1:4]:
            return t, t, out_a[4]
        if out_a[2] or out_a[3]:
            return None, t, out_a[4]
    return None, max_steps, out_a[4]


class TrackFollower:
    """A driver that reads the track: steers towards the centre-line point `ahead` tiles past the nearest one,
    holds about 40 units/s; finishes a lap in 1,100-1,400 steps. policy(env, t) for `first_difference`."""

    def __init__(self, ahead: int = 6, gain: float = 3.0):
        self.ahead, self.gain = ahead, gain

    def __call__(self, env, t) -> np.ndarray:
        x, y = env.car.hull.position
        track = np.array([(p[2], p[3]) for p in env.track])
        tx, ty = track[(int(np.argmin(((track - (x, y)) ** 2).sum(1))) + self.ahead) % len(track)]
        angle = env.car.hull.angle
        hx, hy = -math.sin(angle), math.cos(angle)  # the car's forward direction
        error = math.atan2(hx * (ty - y) - hy * (tx - x), hx * (tx - x) + hy * (ty - y))
        speed = float(np.hypot(*env.car.hull.linearVelocity))
        return np.array([np.clip(-self.gain * error, -1, 1), 0.6 if speed < 40 else 0.0, 0.3 if speed > 45 else 0.0],
                        np.float32)


gym.register(FAST_ID, entry_point=FastCarRacing, max_episode_steps=1000, reward_threshold=900)


def make_carracing(max_steps: int = 1000, render_mode: str | None = None, env_id: str = FAST_ID) -> gym.Env:
    """CarRacing-v3 (continuous, fixed colours; by default our FastCarRacing, the same environment) whose
    observations are uint8 (64, 64, 3) frames."""
    env = gym.make(env_id, continuous=True, domain_randomize=False,
                   max_episode_steps=max_steps, render_mode=render_mode)
    env = TransformObservation(env, lambda obs: obs[:84], Box(0, 255, (84, 96, 3), np.uint8))
    return ResizeObservation(env, (64, 64))


def carracing_action(a: np.ndarray) -> np.ndarray:
    """Controller output in [-1, 1]^3 -> env action: steer = a0, gas = (a1 + 1) / 2, brake = clip(a2, 0, 1)."""
    return np.array([a[0], (a[1] + 1) / 2, np.clip(a[2], 0, 1)], dtype=np.float32)


class BrownianPolicy:
    """Random data-collection policy: a clipped Brownian walk on the action (dt = 1/50), which
    explores the track far better than independent uniform actions."""

    def __init__(self, action_space: Box, rng: np.random.Generator, dt: float = 1 / 50):
        self.space, self.rng, self.dt = action_space, rng, dt
        self.action = rng.uniform(action_space.low, action_space.high).astype(np.float32)

    def __call__(self, obs) -> np.ndarray:
        step = np.sqrt(self.dt) * self.rng.standard_normal(self.space.shape)
        self.action = np.clip(self.action + step, self.space.low, self.space.high).astype(np.float32)
        return self.action
