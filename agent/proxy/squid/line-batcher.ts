// Many helper lines arrive per read under load: their answers go out in one write per turn of the
// event loop instead of one syscall each (Squid reads them all from one pipe read).

export class LineBatcher {
  private pending = "";
  private scheduled = false;

  constructor(private readonly write: (text: string) => void) {}

  push(line: string): void {
    this.pending += line;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending === "") return;
    const text = this.pending;
    this.pending = "";
    this.write(text);
  }
}
