using Npgsql;

// argv: host port
var builder = new NpgsqlSlimDataSourceBuilder($"Host={args[0]};Port={args[1]};Username=postgres;Database=postgres;Pooling=false");
builder.EnableArrays();
await using var source = builder.Build();
await using var connection = await source.OpenConnectionAsync();
await using var batch = new NpgsqlBatch(connection)
{
    BatchCommands = { new("select name, setting from pg_settings"), new("select line_number, error from pg_hba_file_rules") },
};
await using var reader = await batch.ExecuteReaderAsync();
var rows = 0;
do
{
    while (await reader.ReadAsync())
    {
        rows++;
    }
}
while (await reader.NextResultAsync());
return rows > 0 ? 0 : 1;
