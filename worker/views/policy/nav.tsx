export function PolicyNav(props: { current: string }) {
  return (
    <nav class="tabs" aria-label="Policy">
      <a href="/policy" aria-current={props.current === "/policy" ? "page" : undefined}>
        Edit draft
      </a>
      <a href="/policy/history" aria-current={props.current === "/policy/history" ? "page" : undefined}>
        History and diff
      </a>
      <a href="/policy/test" aria-current={props.current === "/policy/test" ? "page" : undefined}>
        Test a request
      </a>
    </nav>
  );
}
