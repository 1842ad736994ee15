/**
 * The benchmarks' real-server HTTP program: nginx with one worker answering every request with
 * "ok\n" on `port`, no access log, its pid, error log and temp files in `dir` (created).
 * Returns the configuration file's path, for `nginx -c`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeNginxConf(dir: string, port: number): string {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, 'nginx.conf');
  writeFileSync(
    f,
    `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { listen ${port} backlog=8192; location / { return 200 "ok\\n"; } } }\n`,
  );
  return f;
}
