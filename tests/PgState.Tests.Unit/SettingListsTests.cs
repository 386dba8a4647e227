using PgState.Modules.Archiving;

namespace PgState.Tests.Unit;

/// <summary>List parameters (GUC_LIST_QUOTE) as the server splits them, and what would keep a server from starting.</summary>
public class SettingListsTests
{
    [Theory]
    [InlineData("shared_preload_libraries", "pg_stat_statements, auto_explain", "E'pg_stat_statements', E'auto_explain'")]
    [InlineData("search_path", "\"$user\", public, Other", "E'$user', E'public', E'other'")]
    [InlineData("search_path", "\"My \"\"Schema\"\"\"", "E'My \"Schema\"'")]
    [InlineData("unix_socket_directories", "/run/postgresql, /tmp", "E'/run/postgresql', E'/tmp'")]
    [InlineData("work_mem", "64MB", "E'64MB'")]
    [InlineData("shared_preload_libraries", "", "E''")]
    [InlineData("search_path", "\u212Aeep, Ärger", "E'\u212Aeep', E'\u00C4rger'")]
    public void A_list_is_written_one_literal_per_element(string name, string value, string expected) =>
        Assert.Equal(expected, SettingLists.Literals(name, value));

    [Theory]
    [InlineData("shared_preload_libraries", "pg_stat_statements,", "empty element")]
    [InlineData("unix_socket_directories", "/tmp/sock,", "empty element")]
    [InlineData("search_path", "a,,b", "empty element")]
    [InlineData("search_path", "\"\", public", "empty element")]
    [InlineData("search_path", "\"a\"b, c", "text after a closing double quote")]
    [InlineData("search_path", "a\"b\"", "double quote inside an element")]
    [InlineData("search_path", "\"unclosed, public", "not closed")]
    [InlineData("shared_preload_libraries", "\u00a0", "U+00A0")]
    [InlineData("search_path", "public,\u2003app", "U+2003")]
    public void A_list_the_server_would_misread_is_refused(string name, string value, string problem) =>
        Assert.Contains(problem, SettingLists.Problem(name, value));

    [Theory]
    [InlineData("search_path", "\"$user\", public")]
    [InlineData("shared_preload_libraries", "pg_stat_statements")]
    [InlineData("shared_preload_libraries", "")]
    [InlineData("work_mem", "a,,b")]
    public void A_clean_list_or_a_plain_parameter_has_no_problem(string name, string value) =>
        Assert.Null(SettingLists.Problem(name, value));
}
