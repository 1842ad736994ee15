/**
 * Which path the test beds' ulvsd take for new connections: the suite runs once as configured
 * (kernel set-up off, ulvsd's default: the engine's exact path) and once more for the files of
 * scripts/run-tests.js's EXACTNESS list with `ULVS_TEST_KERNEL_SETUP=1`, which puts
 * `--sysctl kernel_setup=1` before the bed's own ulvsd arguments (a bed that sets kernel_setup
 * itself keeps its own: the last value of one sysctl wins). Issue 16: "all IPVS-exactness tests
 * still pass for both paths".
 */
export function pathArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return env['ULVS_TEST_KERNEL_SETUP'] === '1' ? ['--sysctl', 'kernel_setup=1'] : [];
}
