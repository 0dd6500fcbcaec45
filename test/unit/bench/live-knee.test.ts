import { bisectKnee, kneeBracket, type LiveStep } from '../../../bench/live';

const step = (targetRate: number, keptUp: boolean, p99: number): LiveStep => ({
  workers: 1,
  targetRate,
  achievedRate: targetRate,
  changes: targetRate * 10,
  probes: 100,
  p50: p99 / 3,
  p95: p99 / 1.5,
  p99,
  drainMs: keptUp ? 20 : 5000,
  keptUp,
});

describe("the live sweep's knee", () => {
  it('brackets the highest rate that held below the first that did not, ignoring a later lucky one and the flat-out step', () => {
    const steps = [
      step(1000, true, 90),
      step(5000, true, 240),
      step(10000, true, 400), // kept up, but p99 over 250 ms: does not hold
      step(15000, false, 9000),
      step(25000, true, 120),
      step(0, false, 8000),
    ];
    expect(kneeBracket(steps)).toEqual({ held: 5000, failed: 10000 });
    expect(bisectKnee(kneeBracket(steps))).toBe(7500);
  });

  it('narrows with each bisection step and stops within 500/s', () => {
    const steps = [step(5000, true, 100), step(10000, false, 3000)];
    const capacity = 8200;
    const tried: number[] = [];
    for (let rate = bisectKnee(kneeBracket(steps)); rate !== undefined; rate = bisectKnee(kneeBracket(steps))) {
      tried.push(rate);
      steps.push(step(rate, rate <= capacity, rate <= capacity ? 150 : 2000));
    }
    expect(tried).toEqual([7500, 8800, 8200, 8500]);
    expect(kneeBracket(steps)).toEqual({ held: 8200, failed: 8500 });
  });

  it('leaves out a low rate that failed before any held (a warm-up outlier)', () => {
    const steps = [step(1000, true, 449), step(5000, true, 74), step(15000, true, 110), step(20000, true, 258)];
    expect(kneeBracket(steps)).toEqual({ held: 15000, failed: 20000 });
  });

  it('has no bracket when every rate held or none did', () => {
    expect(kneeBracket([step(1000, true, 50), step(5000, true, 80)])).toBeUndefined();
    expect(kneeBracket([step(1000, false, 900)])).toBeUndefined();
    expect(bisectKnee(undefined)).toBeUndefined();
  });
});
