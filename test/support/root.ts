/** Integration tests need root (network namespaces, TUN); elsewhere they are skipped with this reason. */
export const needsRoot: string | false = process.getuid?.() === 0 ? false : 'needs root: network namespaces and a TUN device';
