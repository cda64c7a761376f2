/** GET `url` through the forward proxy at 127.0.0.1:proxyPort (absolute-form request). */
export function proxyGet(
  proxyPort: number,
  url: string,
  timeoutMs?: number,
): Promise<{ status: number; body: string }>;
