/**
 * Control-plane errors. Each has a stable `code` (the errno IPVS would return, or an ulvs code)
 * and the message ipvsadm prints for it (ipvs-spec §6.10). The packet path never throws.
 */
export class IpvsError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'IpvsError';
  }
}

export const errors = {
  serviceExists: () => new IpvsError('EEXIST', 'Service already exists'),
  noService: () => new IpvsError('ESRCH', 'No such service'),
  serviceNotDefined: () => new IpvsError('ESRCH', 'Service not defined'),
  destExists: () => new IpvsError('EEXIST', 'Destination already exists'),
  noDest: () => new IpvsError('ENOENT', 'No such destination'),
  schedNotFound: () => new IpvsError('ENOENT', 'Scheduler or persistence engine not found'),
  range: (what: string) => new IpvsError('ERANGE', `Numerical result out of range (${what})`),
  invalid: (what: string) => new IpvsError('EINVAL', `Invalid operation.  Possibly wrong module version, address not unicast, ... (${what})`),
  notSupported: (what: string) => new IpvsError('EOPNOTSUPP', `${what} is not supported by ulvs yet`),
  tooMany: (what: string) => new IpvsError('ENOSPC', `${what}`),
};
