using PgState.Engine.Rendering;

namespace PgState.Tests.Unit;

/// <summary>Text from a live host or a plan file cannot rewrite a terminal or break out of a pull-request comment.</summary>
public class SafeTextTests
{
    [Theory]
    [InlineData("e\u001b[31mRED\u001b]0;TITLE\u0007", "e\\u{001B}[31mRED\\u{001B}]0;TITLE\\u{0007}")]
    [InlineData("a\nb\r", "a\\u{000A}b\\u{000D}")]
    [InlineData("abc\u202Etxt.exe", "abc\\u{202E}txt.exe")]
    [InlineData("\u0085next", "\\u{0085}next")]
    [InlineData("plain ünïcode ok", "plain ünïcode ok")]
    public void Text_escapes_control_and_format_characters(string input, string expected) =>
        Assert.Equal(expected, SafeText.Text(input));

    [Fact]
    public void Markdown_prose_carries_no_html_link_or_table_breakout()
    {
        var md = SafeText.Markdown("ev</details><!--\n## injected [x](https://evil.example) | `code`");
        Assert.DoesNotContain("<", md);
        Assert.DoesNotContain("\n", md);
        Assert.Contains("[x]\\(https", md);                 // "](" broken: no link
        Assert.DoesNotContain("`", md);
        Assert.Contains("\\|", md);
        Assert.Contains("&lt;/details&gt;&lt;!--", md);
    }

    [Fact]
    public void A_code_span_cannot_be_closed_from_inside()
    {
        var code = SafeText.Code("db9`</b></summary>|x");
        Assert.Equal("`db9'</b></summary>\\|x`", code);
        Assert.Equal(2, code.Count(c => c == '`'));
    }
}
